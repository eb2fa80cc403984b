// The image canvas shared by Annotate and Review: an image with Annotorious v3 on top for drawing
// and editing boxes and polygons, zoom (Ctrl+wheel, +/-, fit) and pan (scroll, or drag with Space
// or the middle button). Images too big for one <img> open in OpenSeadragon (tiled.ts) with the
// same API. Coordinates are image pixels; API annotations map to Annotorious shapes.
import {
  createImageAnnotator,
  ShapeType,
  type AnnotoriousOpts,
  type Color,
  type DrawingStyle,
  type ImageAnnotation,
  type ImageAnnotator,
  UserSelectAction,
} from "@annotorious/annotorious";
import "@annotorious/annotorious/annotorious.css";
import type { AnnotationData } from "./api";
import { emptyState, h } from "./dom";
import { bindKeys } from "./keys";

export type Kind = "annotation" | "region" | "parent";

export interface Shape {
  bbox: [number, number, number, number];
  polygon: number[] | null; // the ring the canvas shows and edits, or null for a box
  /** Every stored ring and the stored mask, when the shape comes from the API (the canvas shows ring 0). */
  rings?: number[][] | null;
  rle?: Record<string, unknown> | null;
}

type Body = { label: string; bbox?: [number, number, number, number]; polygons?: number[][] | null; rle?: Record<string, unknown> };

/** A new annotation: the whole shape (every ring and the mask when it is a stored one being restored). */
export function createBody(label: string, shape: Shape): Body {
  const polygons = shape.rings?.length ? shape.rings : shape.polygon ? [shape.polygon] : null;
  return { label, bbox: shape.bbox, polygons, ...(shape.rle ? { rle: shape.rle } : {}) };
}

/** An edit sends only what changed: a moved box or a dragged polygon as its new box alone (the server moves
 *  every ring and the mask with it); a reshaped ring with the other rings kept; a whole stored shape as it was. */
export function editBody(label: string, shape: Shape, stored?: AnnotationData): Body {
  if ((shape.rings?.length) || shape.rle) return { label, bbox: shape.bbox, polygons: shape.rings ?? null, ...(shape.rle ? { rle: shape.rle } : {}) };
  if (!shape.polygon) return { label, bbox: shape.bbox };
  const old = stored?.polygons?.[0];
  const ring = shape.polygon;
  if (stored && old && old.length === ring.length) {
    const dx = ring[0] - old[0];
    const dy = ring[1] - old[1];
    if (old.every((v, i) => Math.abs(v + (i % 2 === 0 ? dx : dy) - ring[i]) < 0.05)) {
      const [x1, y1, x2, y2] = stored.bbox;  // the whole annotation's box (all rings), moved
      return { label, bbox: [round(x1 + dx), round(y1 + dy), round(x2 + dx), round(y2 + dy)] };
    }
  }
  // a reshaped ring: the box follows from all the rings
  return { label, polygons: [ring, ...(stored?.polygons ?? []).slice(1)] };
}

export interface CanvasItem {
  localId: string;
  kind: Kind;
  label: string;
  score: number | null;
  reviewState: string | null;
  /** a parent layer's region: its class colour */
  color?: string;
}

export interface CanvasEvents {
  onCreate?: (localId: string, shape: Shape) => void;
  onUpdate?: (localId: string, shape: Shape) => void;
  onDelete?: (localId: string) => void;
  onSelect?: (localIds: string[]) => void;
  /** A click-to-box click (the click tool, or Alt+click with any tool), in image pixels. */
  onPoint?: (x: number, y: number) => void;
  /** A finished brush stroke: its path and radius in image pixels. */
  onBrush?: (points: { x: number; y: number }[], radius: number) => void;
}

export type StyleFn = (item: CanvasItem, selected: boolean) => { fill: string; stroke: string; fillOpacity: number; strokeWidth: number };

function rectSelector(b: [number, number, number, number]) {
  const [x1, y1, x2, y2] = b;
  return { type: ShapeType.RECTANGLE, geometry: { x: x1, y: y1, w: x2 - x1, h: y2 - y1, bounds: { minX: x1, minY: y1, maxX: x2, maxY: y2 } } };
}

function polySelector(ring: number[]) {
  const points: number[][] = [];
  for (let i = 0; i + 1 < ring.length; i += 2) points.push([ring[i], ring[i + 1]]);
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return { type: ShapeType.POLYGON, geometry: { points, bounds: { minX: Math.min(...xs), minY: Math.min(...ys), maxX: Math.max(...xs), maxY: Math.max(...ys) } } };
}

export function shapeOf(a: ImageAnnotation): Shape {
  const sel = a.target.selector as any;
  if (sel.type === ShapeType.POLYGON) {
    const ring: number[] = (sel.geometry.points as number[][]).flatMap((p) => [round(p[0]), round(p[1])]);
    const b = sel.geometry.bounds;
    return { bbox: [round(b.minX), round(b.minY), round(b.maxX), round(b.maxY)], polygon: ring };
  }
  const g = sel.geometry;
  return { bbox: [round(g.x), round(g.y), round(g.x + g.w), round(g.y + g.h)], polygon: null };
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

/**
 * Images whose longest side is over this many pixels open in OpenSeadragon over the server's Deep
 * Zoom tiles (`/images/{id}/tiles.dzi`) instead of one <img>: beyond it a whole decoded image costs
 * hundreds of MB in the browser (4 bytes a pixel) and exceeds many GPUs' 4096 px texture limit, while
 * a tiled viewer only fetches and holds the tiles on screen at the zoom shown.
 */
export const TILED_VIEWER_MIN_SIDE = 4096;

/** Where an image's pixels come from, and its size in pixels. */
export interface ImageSource {
  file: string;
  dzi: string;
  width: number;
  height: number;
}

export function imageSource(base: string, image: { id: number; width: number; height: number }): ImageSource {
  const url = `${base}/images/${image.id}`;
  return { file: `${url}/file`, dzi: `${url}/tiles.dzi`, width: image.width, height: image.height };
}

export function opensTiled(source: ImageSource): boolean {
  return Math.max(source.width, source.height) > TILED_VIEWER_MIN_SIDE;
}

/** The part of an Annotorious annotator the canvas uses: the plain-image and the OpenSeadragon ones both have it. */
export type Annotator = Pick<
  ImageAnnotator,
  | "on"
  | "destroy"
  | "setAnnotations"
  | "getAnnotationById"
  | "addAnnotation"
  | "updateAnnotation"
  | "removeAnnotation"
  | "setSelected"
  | "cancelSelected"
  | "cancelDrawing"
  | "setDrawingTool"
  | "setDrawingMode"
  | "setDrawingEnabled"
  | "setStyle"
>;

export type AnnotatorOptions = Pick<AnnotoriousOpts<ImageAnnotation, ImageAnnotation>, "drawingEnabled" | "drawingMode" | "style" | "userSelectAction">;

/** Whether a click on ITEM selects it for editing (else the click goes to the drawing tool). */
export type SelectableFn = (item: CanvasItem | undefined) => boolean;

/**
 * How an image is shown, zoomed and panned, with the annotator drawn over it: one <img> scaled by
 * CSS (`PlainSurface`) or OpenSeadragon (`TiledSurface` in tiled.ts, loaded only when needed).
 * Zoom is screen pixels per image pixel; client coordinates are the pointer's.
 */
export interface Surface {
  readonly annotator: Annotator;
  /** true when the wheel scrolls the viewport by itself (else the canvas pans on wheel) */
  readonly scrollsNatively: boolean;
  fit(): void;
  zoomBy(factor: number, clientX?: number, clientY?: number): void;
  panBy(dx: number, dy: number): void;
  /** Image pixel under a pointer position (client coordinates). */
  toImage(clientX: number, clientY: number): { x: number; y: number };
  destroy(): void;
}

/** The image as one <img> in a scrolling viewport: zoom sets its CSS size, pan scrolls. */
class PlainSurface implements Surface {
  readonly scrollsNatively = true;
  readonly annotator: Annotator;
  private zoom = 1;

  private constructor(
    private readonly viewport: HTMLElement,
    private readonly stage: HTMLElement,
    private readonly img: HTMLImageElement,
    private readonly source: ImageSource,
    private readonly onZoom: (zoom: number) => void,
    options: AnnotatorOptions,
  ) {
    this.fit();
    this.annotator = createImageAnnotator(img, options);
  }

  /** Show the image's file in ``viewport``; resolves once it is decoded (or failed to). */
  static async open(viewport: HTMLElement, source: ImageSource, onZoom: (zoom: number) => void, options: AnnotatorOptions): Promise<PlainSurface> {
    const img = h("img", { class: "canvas-img", alt: "", draggable: false, src: source.file });
    const stage = h("div", { class: "canvas-stage" }, img);
    viewport.replaceChildren(stage);
    await img.decode().catch(() => undefined);
    return new PlainSurface(viewport, stage, img, source, onZoom, options);
  }

  fit(): void {
    const vw = this.viewport.clientWidth || 800;
    const vh = this.viewport.clientHeight || 600;
    this.setZoom(Math.min(vw / this.source.width, vh / this.source.height) * 0.98);
  }

  zoomBy(factor: number, clientX?: number, clientY?: number): void {
    const rect = this.viewport.getBoundingClientRect();
    const px = clientX === undefined ? rect.width / 2 : clientX - rect.left;
    const py = clientY === undefined ? rect.height / 2 : clientY - rect.top;
    const ix = (this.viewport.scrollLeft + px - this.stage.offsetLeft) / this.zoom;
    const iy = (this.viewport.scrollTop + py - this.stage.offsetTop) / this.zoom;
    this.setZoom(this.zoom * factor);
    this.viewport.scrollLeft = ix * this.zoom + this.stage.offsetLeft - px;
    this.viewport.scrollTop = iy * this.zoom + this.stage.offsetTop - py;
  }

  panBy(dx: number, dy: number): void {
    this.viewport.scrollLeft -= dx;
    this.viewport.scrollTop -= dy;
  }

  toImage(clientX: number, clientY: number): { x: number; y: number } {
    const rect = this.img.getBoundingClientRect();
    return { x: (clientX - rect.left) / this.zoom, y: (clientY - rect.top) / this.zoom };
  }

  destroy(): void {
    this.annotator.destroy();
    this.stage.remove();
  }

  private setZoom(z: number): void {
    this.zoom = Math.max(0.05, Math.min(20, z));
    this.img.style.width = `${this.source.width * this.zoom}px`;
    this.img.style.height = `${this.source.height * this.zoom}px`;
    this.onZoom(this.zoom);
  }
}

export class ImageCanvas {
  readonly element: HTMLElement;
  private viewport: HTMLElement;
  private surface: Surface | null = null;
  private anno: Annotator | null = null;
  private items = new Map<string, CanvasItem>();
  private selected = new Set<string>();
  private zoom = 1;
  private loads = 0;
  private spaceDown = false;
  private drawing = true;
  private drawingTool: "rectangle" | "polygon" = "rectangle";
  private selectable: SelectableFn = () => true;
  private pointMode = false;
  private brushMode = false;
  /** the brush's radius on screen (image pixels: divided by the zoom) */
  brushRadius = 14;
  private brushColor = "#ffffff";
  private stroke: { x: number; y: number }[] | null = null;
  private overlay: HTMLCanvasElement | null = null;
  private silent = 0;
  private cleanups: (() => void)[] = [];

  constructor(private events: CanvasEvents, private style: StyleFn, private editable = true) {
    this.viewport = h("div", { class: "canvas-viewport", tabindex: "0" });
    this.element = h("div", { class: "canvas" }, this.viewport);
    this.bindPan();
  }

  /** Show an image: a plain <img> when it fits, OpenSeadragon over its tiles when it is bigger than TILED_VIEWER_MIN_SIDE. */
  async load(source: ImageSource): Promise<void> {
    const ticket = ++this.loads;
    this.destroySurface();
    this.element.replaceChildren(this.viewport);
    const tiled = opensTiled(source);
    this.viewport.classList.toggle("tiled", tiled);
    const onZoom = (z: number) => this.setZoomLabel(z);
    const options: AnnotatorOptions = {
      drawingEnabled: this.editable && this.drawing && !this.pointMode,
      drawingMode: "drag",
      style: this.styleFn(),
      // asked at each click, so it follows the page's current tool
      userSelectAction: (a: ImageAnnotation) => (this.selectable(this.items.get(a.id)) ? UserSelectAction.EDIT : UserSelectAction.NONE),
    };
    let surface: Surface;
    try {
      surface = tiled
        ? await (await import("./tiled")).TiledSurface.open(this.viewport, source, onZoom, options)
        : await PlainSurface.open(this.viewport, source, onZoom, options);
    } catch (err) {
      if (ticket === this.loads) this.element.replaceChildren(emptyState("Cannot show this image", err instanceof Error ? err.message : String(err)));
      return;
    }
    if (ticket !== this.loads) {
      surface.destroy(); // another image was asked for meanwhile
      return;
    }
    this.surface = surface;
    this.anno = surface.annotator;
    this.anno.setDrawingTool(this.drawingTool);
    this.anno.setDrawingMode(this.drawingTool === "polygon" ? "click" : "drag");
    this.anno.on("createAnnotation", (a) => {
      if (this.silent) return;
      this.events.onCreate?.(a.id, shapeOf(a));
    });
    this.anno.on("updateAnnotation", (a) => {
      if (this.silent) return;
      this.events.onUpdate?.(a.id, shapeOf(a));
    });
    this.anno.on("deleteAnnotation", (a) => {
      if (this.silent) return;
      this.events.onDelete?.(a.id);
    });
    this.anno.on("selectionChanged", (sel) => {
      this.selected = new Set(sel.map((a) => a.id));
      this.events.onSelect?.([...this.selected]);
    });
  }

  private destroySurface(): void {
    this.surface?.destroy();
    this.surface = null;
    this.anno = null;
    this.items.clear();
    this.selected.clear();
  }

  destroy(): void {
    this.loads++;
    this.destroySurface();
    for (const f of this.cleanups) f();
  }

  /** Replace what is shown (no lifecycle callbacks fire). */
  setItems(items: { item: CanvasItem; shape: Shape }[]): void {
    if (!this.anno) return;
    this.items = new Map(items.map((i) => [i.item.localId, i.item]));
    this.quietly(() => this.anno!.setAnnotations(items.map((i) => this.toAnnotorious(i.item, i.shape)), true));
  }

  upsert(item: CanvasItem, shape: Shape | null): void {
    if (!this.anno) return;
    this.items.set(item.localId, item);
    const existing = this.anno.getAnnotationById(item.localId);
    this.quietly(() => {
      if (existing && shape === null) this.anno!.updateAnnotation({ ...existing, bodies: [...existing.bodies] });
      else if (existing && shape) this.anno!.updateAnnotation(this.toAnnotorious(item, shape));
      else if (shape) this.anno!.addAnnotation(this.toAnnotorious(item, shape));
    });
  }

  rename(oldId: string, item: CanvasItem, shape: Shape): void {
    this.quietly(() => this.anno?.removeAnnotation(oldId));
    this.items.delete(oldId);
    this.upsert(item, shape);
  }

  remove(localId: string): void {
    this.items.delete(localId);
    this.selected.delete(localId);
    this.quietly(() => this.anno?.removeAnnotation(localId));
  }

  idsOfKind(kind: Kind): string[] {
    return [...this.items.values()].filter((i) => i.kind === kind).map((i) => i.localId);
  }

  item(localId: string): CanvasItem | undefined {
    return this.items.get(localId);
  }

  shape(localId: string): Shape | null {
    const a = this.anno?.getAnnotationById(localId);
    return a ? shapeOf(a) : null;
  }

  getSelected(): string[] {
    return [...this.selected];
  }

  /** Which shapes a click selects; the others let the click through to the drawing tool. */
  setSelectable(fn: SelectableFn): void {
    this.selectable = fn;
  }

  select(localId: string | null): void {
    this.anno?.setSelected(localId ?? undefined, localId ? true : undefined); // picked from the list: editable
    this.selected = new Set(localId ? [localId] : []);
    this.events.onSelect?.([...this.selected]);
  }

  cancel(): void {
    this.anno?.cancelDrawing();
    this.anno?.cancelSelected();
  }

  setTool(tool: "rectangle" | "polygon"): void {
    this.drawingTool = tool;
    this.anno?.setDrawingTool(tool);
    this.anno?.setDrawingMode(tool === "polygon" ? "click" : "drag");
  }

  /** In point mode every left click is a click-to-box click (``onPoint``), not a drawing. */
  setPointMode(on: boolean): void {
    this.pointMode = on;
    this.viewport.classList.toggle("point-mode", on);
    this.anno?.setDrawingEnabled(this.editable && this.drawing && !on && !this.spaceDown);
  }

  /** In brush mode a left drag paints (``onBrush`` at the end) instead of drawing a shape. */
  setBrushMode(on: boolean, color?: string): void {
    this.brushMode = on;
    if (color) this.brushColor = color;
    this.viewport.classList.toggle("brush-mode", on);
    this.anno?.setDrawingEnabled(this.editable && this.drawing && !on && !this.pointMode && !this.spaceDown);
  }

  private brushDown(e: PointerEvent): void {
    const rect = this.element.getBoundingClientRect();
    this.overlay ??= h("canvas", { class: "brush-overlay" });
    this.overlay.width = Math.round(rect.width);
    this.overlay.height = Math.round(rect.height);
    this.element.append(this.overlay);
    this.stroke = [];
    this.brushMove(e);
  }

  private brushMove(e: PointerEvent): void {
    if (!this.stroke || !this.surface || !this.overlay) return;
    this.stroke.push(this.surface.toImage(e.clientX, e.clientY));
    const rect = this.element.getBoundingClientRect();
    const g = this.overlay.getContext("2d");
    if (!g) return;
    g.fillStyle = this.brushColor;
    g.globalAlpha = 0.45;
    g.beginPath();
    g.arc(e.clientX - rect.left, e.clientY - rect.top, this.brushRadius, 0, 2 * Math.PI);
    g.fill();
  }

  private brushUp(): void {
    const points = this.stroke;
    this.stroke = null;
    this.overlay?.remove();
    if (points?.length) this.events.onBrush?.(points, this.brushRadius / Math.max(this.zoom, 1e-6));
  }

  setDrawingEnabled(on: boolean): void {
    this.drawing = on;
    this.anno?.setDrawingEnabled(this.editable && on && !this.pointMode && !this.spaceDown);
  }

  redraw(): void {
    this.anno?.setStyle(this.styleFn());
  }

  private styleFn(): (a: ImageAnnotation, state?: { selected?: boolean }) => DrawingStyle {
    return (a: ImageAnnotation, state?: { selected?: boolean }) => {
      const item = this.items.get(a.id) ?? { localId: a.id, kind: "annotation" as Kind, label: "", score: null, reviewState: null };
      const s = this.style(item, !!state?.selected || this.selected.has(a.id));
      return { fill: s.fill as Color, fillOpacity: s.fillOpacity, stroke: s.stroke as Color, strokeWidth: s.strokeWidth };
    };
  }

  // ---- zoom and pan (the surface does them; the input bindings are the same for both) -------
  fit(): void {
    this.surface?.fit();
  }

  /** Zoom by ``factor`` around the viewport's centre, or around a pointer position (client coordinates). */
  zoomBy(factor: number, clientX?: number, clientY?: number): void {
    this.surface?.zoomBy(factor, clientX, clientY);
  }

  get zoomLevel(): number {
    return this.zoom;
  }

  private setZoomLabel(z: number): void {
    this.zoom = z;
    this.element.dispatchEvent(new CustomEvent("zoom", { detail: z }));
  }

  private bindPan(): void {
    const onWheel = (e: WheelEvent) => {
      if (!this.surface) return;
      if (e.ctrlKey || e.metaKey) this.zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX, e.clientY);
      else if (this.surface.scrollsNatively) return;
      else this.surface.panBy(-e.deltaX, -e.deltaY);
      e.preventDefault();
      e.stopPropagation();
    };
    let last: { x: number; y: number } | null = null;
    const onDown = (e: PointerEvent) => {
      if (e.button === 0 && !this.spaceDown && this.brushMode && this.editable && this.surface) {
        e.preventDefault();
        e.stopPropagation();
        this.brushDown(e);
        return;
      }
      if (e.button === 0 && !this.spaceDown && (this.pointMode || e.altKey) && this.surface && this.events.onPoint) {
        e.preventDefault();
        e.stopPropagation();
        const p = this.surface.toImage(e.clientX, e.clientY);
        this.events.onPoint(p.x, p.y);
        return;
      }
      if (e.button === 1 || (e.button === 0 && this.spaceDown)) {
        e.preventDefault();
        e.stopPropagation();
        last = { x: e.clientX, y: e.clientY };
        this.viewport.classList.add("panning");
      }
    };
    const onMove = (e: PointerEvent) => {
      if (this.stroke) {
        e.preventDefault();
        e.stopPropagation();
        this.brushMove(e);
        return;
      }
      if (!last) return;
      e.preventDefault();
      e.stopPropagation();
      this.surface?.panBy(e.clientX - last.x, e.clientY - last.y);
      last = { x: e.clientX, y: e.clientY };
    };
    const onUp = () => {
      if (this.stroke) this.brushUp();
      last = null;
      this.viewport.classList.remove("panning");
    };
    const unbindKeys = bindKeys([{
      keys: ["Space"],
      hold: (down) => {
        this.spaceDown = down;
        this.anno?.setDrawingEnabled(this.editable && this.drawing && !this.pointMode && !this.spaceDown);
        this.viewport.classList.toggle("can-pan", this.spaceDown);
      },
    }]);
    // capture phase: the wheel and a panning drag never reach OpenSeadragon's own handlers
    this.viewport.addEventListener("wheel", onWheel, { passive: false, capture: true });
    this.viewport.addEventListener("pointerdown", onDown, true);
    window.addEventListener("pointermove", onMove, true);
    window.addEventListener("pointerup", onUp, true);
    this.cleanups.push(() => {
      window.removeEventListener("pointermove", onMove, true);
      window.removeEventListener("pointerup", onUp, true);
      unbindKeys();
    });
  }

  private quietly(fn: () => void): void {
    this.silent++;
    try {
      fn();
    } finally {
      this.silent--;
    }
  }

  private toAnnotorious(item: CanvasItem, shape: Shape): ImageAnnotation {
    const selector = shape.polygon && shape.polygon.length >= 6 ? polySelector(shape.polygon) : rectSelector(shape.bbox);
    return {
      id: item.localId,
      bodies: [{ id: `${item.localId}-label`, annotation: item.localId, purpose: "tagging", value: item.label }],
      target: { annotation: item.localId, selector: selector as any },
    } as ImageAnnotation;
  }
}

export function itemFromApi(a: AnnotationData): { item: CanvasItem; shape: Shape } {
  return {
    item: { localId: `a${a.id}`, kind: "annotation", label: a.label, score: a.score, reviewState: a.review_state },
    shape: { bbox: a.bbox, polygon: a.polygons?.length ? a.polygons[0] : null, rings: a.polygons, rle: a.rle ?? null },
  };
}

/** The box around a flat ring [x0, y0, x1, y1, ...]. */
function ringBox(ring: number[]): [number, number, number, number] {
  const xs = ring.filter((_, j) => j % 2 === 0);
  const ys = ring.filter((_, j) => j % 2 === 1);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

/** How a parent layer's region looks under a child layer's shapes: its class colour, faint. */
export function parentStyle(item: CanvasItem): { fill: string; stroke: string; fillOpacity: number; strokeWidth: number } {
  return { fill: item.color ?? "#ffffff", stroke: item.color ?? "#ffffff", fillOpacity: 0.08, strokeWidth: 1 };
}

/** A parent layer's regions, drawn faintly under a child layer's shapes (never selected or edited). */
export function parentItems(regions: { id: number; label: string; color: string; polygons: number[][] }[]): { item: CanvasItem; shape: Shape }[] {
  return regions.flatMap((r) =>
    r.polygons.filter((ring) => ring.length >= 6).map((ring, i) => ({
      item: { localId: `parent${r.id}-${i}`, kind: "parent" as Kind, label: r.label, score: null, reviewState: null, color: r.color },
      shape: { bbox: ringBox(ring), polygon: ring },
    })),
  );
}

export function regionItems(regions: number[][]): { item: CanvasItem; shape: Shape }[] {
  return regions.map((ring, i) => ({
    item: { localId: `r${i}-${Date.now()}`, kind: "region" as Kind, label: "training region", score: null, reviewState: null },
    shape: { bbox: ringBox(ring), polygon: ring },
  }));
}
