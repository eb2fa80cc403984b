// A small typed client for the labelloop REST API (same origin, session cookie).

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
    public hint: string | null = null,
    public kind = "",
  ) {
    super(message);
  }
}

type Query = Record<string, string | number | boolean | null | undefined>;

function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== null && v !== undefined && v !== "") params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

export async function request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
  const init: RequestInit = { method, headers: {}, credentials: "same-origin" };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["Content-Type"] = "application/json";
  }
  const res = await fetch(withQuery(path, query), init);
  if (res.status === 401 && !path.startsWith("/api/auth/login")) onUnauthorized();
  const text = await res.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) {
    const message = data && typeof data === "object" && data.message ? data.message : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, message, data?.hint ?? null, data?.error ?? "");
  }
  return data as T;
}

export const api = {
  get: <T>(path: string, query?: Query) => request<T>("GET", path, undefined, query),
  post: <T>(path: string, body?: unknown, query?: Query) => request<T>("POST", path, body ?? {}, query),
  patch: <T>(path: string, body: unknown) => request<T>("PATCH", path, body),
  put: <T>(path: string, body: unknown) => request<T>("PUT", path, body),
  del: <T>(path: string, query?: Query) => request<T>("DELETE", path, undefined, query),
  url: withQuery,
};

// ---- shapes of the responses the UI uses ---------------------------------------------------

export interface User {
  id: number;
  username: string;
  role: string;
  permissions: string[];
}
export interface ProjectSummary {
  slug: string;
  name: string;
  task: string;
  images: number;
  proposals: number;
  models: number;
  created_at: string | null;
  error?: string;
}
export interface ClassInfo {
  id: number;
  name: string;
  color: string;
  position: number;
  annotations: number;
}
export interface ImageItem {
  id: number;
  file_name: string;
  width: number;
  height: number;
  status: string;
  split: string | null;
  /** why the file is only partly there (truncated, missing, changed), else null */
  damaged?: string | null;
  annotations?: number;
  proposals?: number;
}
export interface ImagePage {
  items: ImageItem[];
  next_after: number | null;
  prev_before: number | null;
  total: number | null;
}
export interface AnnotationData {
  id: number;
  image_id: number;
  label: string;
  bbox: [number, number, number, number];
  polygons: number[][] | null;
  rle?: Record<string, unknown> | null;
  source: string;
  score: number | null;
  review_state: string | null;
  author: string;
  version: number;
}
export interface ImageDetail extends Omit<ImageItem, "annotations"> {
  regions: number[][];
  annotations: AnnotationData[];
  neighbours: { previous: number | null; next: number | null };
}
export interface Job {
  id: number;
  kind: string;
  project: string;
  params: Record<string, unknown>;
  status: string;
  progress: number;
  message: string;
  error: string | null;
  cancel_requested: boolean;
  created_by: string;
  created_at: string;
  finished_at: string | null;
  output: any;
  events?: JobEvent[];
}
export interface JobEvent {
  type: string;
  seq: number;
  [key: string]: any;
}
export interface NextStep {
  action: string;
  text: string;
  label?: string;
  count?: number;
  round?: number;
}
export interface Overview {
  stats: {
    images: { total: number; by_status: Record<string, number>; by_split: Record<string, number> };
    annotations: { total: number; proposals: number };
    classes: { name: string; color: string; annotations: number; proposals: number; target: number; missing: number }[];
    target_per_class: number;
    ready_to_train: boolean;
  };
  model: { id: number; name: string; round: number; metric: string | null; value: number | null } | null;
  next: NextStep[];
}
export interface BaseModel {
  name: string;
  task: string;
  summary: string;
  guidance: string;
  default: boolean;
}
export interface ModelRecord {
  id: number;
  name: string;
  base: string;
  task: string;
  round: number;
  status: string;
  parent_id: number | null;
  metrics: Record<string, any>;
  best_epoch: number | null;
  classes: string[];
  created_at: string;
  finished_at: string | null;
  error: string | null;
  epochs?: { epoch: number; losses: Record<string, number>; metrics: Record<string, number>; seconds: number }[];
  lineage?: { id: number; name: string; round: number; base: string; map50: number | null; train_images: number | null }[];
  snapshot?: Record<string, any>;
}
export interface Flipbook {
  model_id: number;
  classes: string[];
  images: { image_id: number; file_name: string; width: number; height: number; ground_truth: { label: string; bbox: number[] }[] }[];
  epochs: { epoch: number; predictions: Record<string, { label: string; bbox: number[]; score: number }[]> }[];
}
