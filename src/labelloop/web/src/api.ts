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

// ---- the layer each project is worked on (regions, or the objects inside them) ------------------
// Every request about a project carries its chosen layer (?layer=), so each page works on that layer
// without knowing of it. Kept per project in localStorage; none chosen = the project's first layer.
const LAYER_KEY = "labelloop.layer.";
const PROJECT_PATH = /^\/api\/projects\/([^/?]+)\//;

export function currentLayer(slug: string): string {
  try {
    return localStorage.getItem(LAYER_KEY + slug) ?? "";
  } catch {
    return "";
  }
}

export function setLayer(slug: string, layer: string): void {
  try {
    if (layer) localStorage.setItem(LAYER_KEY + slug, layer);
    else localStorage.removeItem(LAYER_KEY + slug);
  } catch {
    /* private mode: the choice lasts until the page reloads */
  }
}

function withQuery(path: string, query?: Query): string {
  const slug = path.match(PROJECT_PATH)?.[1];
  const layer = slug ? currentLayer(decodeURIComponent(slug)) : "";
  if (layer && !query?.layer) query = { ...query, layer };
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

// ---- shapes of the responses the UI uses: generated from the API's OpenAPI document --------
// (src/schema.d.ts, by scripts/api_types.py; `make web` regenerates it, `make test` checks it)

import type { components } from "./schema";

type Schemas = components["schemas"];
export type User = Schemas["UserInfo"];
export type ProjectSummary = Schemas["ProjectSummary"];
export type ClassInfo = Schemas["ClassInfo"];
export type ImageItem = Schemas["ImageItem"];
export type ImagePage = Schemas["ImagePage"];
export type AnnotationData = Schemas["Annotation"];
export type ImageDetail = Schemas["ImageDetail"];
export type Job = Schemas["Job"];
export type NextStep = Schemas["NextStep"];
export type Overview = Schemas["Overview"];
export type BaseModel = Schemas["BaseModelInfo"];
/** a model as listed, or (from GET /models/{id}) with its epochs, lineage and plots */
export type ModelRecord = Schemas["ModelRecord"] & Partial<Pick<Schemas["ModelDetail"], "epochs" | "lineage" | "plots" | "prediction">>;
export type Flipbook = Schemas["Flipbook"];
export type Effort = Schemas["Effort"];
export type LatestSuggestions = Schemas["LatestSuggestions"];
export type LatestIssues = Schemas["LatestIssues"];
export type ReviewQueue = Schemas["ReviewQueue"];
export type QueueItem = Schemas["QueueItem"];
export type ModelComparison = Schemas["ModelComparison"];
export type AcceptedCount = Schemas["AcceptedCount"];
export type ImportReport = Schemas["ImportReport"];
export type UploadReport = Schemas["UploadReport"];
export type FormatInfo = Schemas["FormatInfo"];
export type AuthUser = Schemas["AuthUser"];
export type ExecutorInfo = Schemas["ExecutorInfo"];
export type LayerInfo = Schemas["Layer"];
export type LayerDeleted = Schemas["LayerDeleted"];
export type ParentRegion = Schemas["ParentRegion"];

/** one progress event of a job (a training epoch, a stage's step...): its kind's own fields */
export interface JobEvent {
  type: string;
  seq: number;
  [key: string]: any;
}
