// The Annotate page's state: what is open (classes, the active class and tool, the image and the
// list filter), what each shape on the canvas is on the server (id, version, label), the undo
// stack, and the save queue that serialises the requests of each annotation.
import { ApiError, type AnnotationData, type ClassInfo, type ImageDetail } from "../api";
import type { Shape } from "../canvas";

export type Tool = "rectangle" | "polygon" | "region" | "click" | "brush";

/** A canvas shape's server record. */
export interface Known {
  id: number;
  version: number;
  label: string;
}

export type UndoOp =
  | { type: "create"; localId: string }
  | { type: "update"; localId: string; label: string; shape: Shape }
  | { type: "delete"; label: string; shape: Shape };

export class AnnotateState {
  classes: ClassInfo[];
  current: number;
  tool: Tool = "rectangle";
  detail: ImageDetail | null = null;
  statusFilter: string;
  /** the image list's cursor: the next page starts after this id (null: no more) */
  nextAfter: number | null = null;
  readonly known = new Map<string, Known>();
  readonly undo: UndoOp[] = [];

  constructor(classes: ClassInfo[], label: string | null, statusFilter: string | null) {
    this.classes = classes;
    this.current = Math.max(0, classes.findIndex((c) => c.name === label));
    this.statusFilter = statusFilter ?? "";
  }

  get currentClass(): ClassInfo | undefined {
    return this.classes[this.current];
  }

  color(label: string): string {
    return this.classes.find((c) => c.name === label)?.color ?? "#888";
  }

  /** The list's filter as query parameters: a status, or the damaged files (a flag, not a status). */
  listFilter(): Record<string, string> {
    return this.statusFilter === "damaged" ? { damaged: "true" } : { status: this.statusFilter };
  }

  /** A freshly opened image: nothing known, nothing to undo. */
  open(detail: ImageDetail): void {
    this.detail = detail;
    this.known.clear();
    this.undo.length = 0;
  }

  /** The canvas shows exactly these annotations now. */
  showing(anns: AnnotationData[]): void {
    this.known.clear();
    for (const a of anns) this.known.set(`a${a.id}`, { id: a.id, version: a.version, label: a.label });
    if (this.detail) this.detail.annotations = anns;
  }

  /** The server's answer for a canvas shape: its record, and (for undo and edits) its stored shape. */
  saved(localId: string, a: AnnotationData): void {
    this.known.set(localId, { id: a.id, version: a.version, label: a.label });
    if (this.detail) this.detail.annotations = [...this.detail.annotations.filter((x) => x.id !== a.id), a];
  }

  /** The annotation as the server has it (every ring, the mask), for edits that must keep them. */
  stored(localId: string): AnnotationData | undefined {
    return this.detail?.annotations.find((a) => `a${a.id}` === localId);
  }
}

/** Requests per key run one after another (an edit never overtakes its create); `pending` counts
 * those not yet answered, and the page's save indicator follows it. */
export class SaveQueue {
  pending = 0;
  private readonly queues = new Map<string, Promise<unknown>>();
  /** the newest request failed: "Not saved" stays up until the next one starts */
  private errored = false;

  constructor(
    private readonly show: (text: string, error?: boolean) => void,
    private readonly failed: (err: unknown) => void,
  ) {}

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(key) ?? Promise.resolve();
    this.pending++;
    this.errored = false;
    this.show("Saving…");
    const settled = prev
      .catch(() => undefined)
      .then(fn)
      .catch((err) => {
        this.failed(err);
        this.errored = true;
        this.show("Not saved", true);
        throw err;
      })
      .finally(() => {
        this.pending--;
        if (!this.pending && !this.errored) this.show("Saved");
      });
    this.queues.set(key, settled.catch(() => undefined));
    return settled;
  }

  /** Every request queued so far has been answered (or failed). */
  async idle(): Promise<void> {
    await Promise.all([...this.queues.values()]).catch(() => undefined);
  }
}

/** A 409 means someone else saved the annotation first. */
export function isConflict(err: unknown): err is ApiError {
  return err instanceof ApiError && err.status === 409;
}
