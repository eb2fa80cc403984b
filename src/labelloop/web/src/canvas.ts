// The image canvas shared by Annotate and Review: an image with Annotorious v3 on top for drawing
// and editing boxes and polygons, zoom (Ctrl+wheel, +/-, fit) and pan (scroll, or drag with Space
// or the middle button). Coordinates are image pixels; API annotations map to Annotorious shapes.
import { createImageAnnotator, ShapeType, type Color, type DrawingStyle, type ImageAnnotation, type ImageAnnotator } from "@annotorious/annotorious";
import "@annotorious/annotorious/annotorious.css";
import type { AnnotationData } from "./api";
import { h } from "./dom";

export type Kind = "annotation" | "region";

export interface Shape {
  bbox: [number, number, number, number];
  polygon: number[] | null; // a flat ring, or null for a box
}

export interface CanvasItem {
  localId: string;
  kind: Kind;
  label: string;
  score: number | null;
  reviewState: string | null;
}

export interface CanvasEvents {
  onCreate?: (localId: string, shape: Shape) => void;
  onUpdate?: (localId: string, shape: Shape) => void;
  onDelete?: (localId: string) => void;
  onSelect?: (localIds: string[]) => void;
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

export class ImageCanvas {
  readonly element: HTMLElement;
  private viewport: HTMLElement;
  private stage: HTMLElement;
  private img: HTMLImageElement;
  private anno: ImageAnnotator | null = null;
  private items = new Map<string, CanvasItem>();
  private selected = new Set<string>();
  private zoom = 1;
  private natural = { w: 1, h: 1 };
  private spaceDown = false;
  private drawingTool: "rectangle" | "polygon" = "rectangle";
  private silent = 0;
  private cleanups: (() => void)[] = [];

  constructor(private events: CanvasEvents, private style: StyleFn, private editable = true) {
    this.img = h("img", { class: "canvas-img", alt: "", draggable: false });
    this.stage = h("div", { class: "canvas-stage" });
    this.viewport = h("div", { class: "canvas-viewport", tabindex: "0" }, this.stage);
    this.element = h("div", { class: "canvas" }, this.viewport);
    this.bindPan();
  }

  async load(src: string, width: number, height: number): Promise<void> {
    this.destroyAnnotator();
    this.natural = { w: width, h: height };
    this.element.replaceChildren(this.viewport);
    this.stage.replaceChildren(this.img);
    this.img.src = src;
    await this.img.decode().catch(() => undefined);
    this.fit();
    this.anno = createImageAnnotator(this.img, {
      drawingEnabled: this.editable,
      drawingMode: "drag",
      style: this.styleFn(),
    });
    this.anno.setDrawingTool(this.drawingTool);
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

  private destroyAnnotator(): void {
    if (this.anno) {
      this.anno.destroy();
      this.anno = null;
    }
    this.items.clear();
    this.selected.clear();
  }

  destroy(): void {
    this.destroyAnnotator();
    this.cleanups.forEach((f) => f());
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

  select(localId: string | null): void {
    this.anno?.setSelected(localId ?? undefined);
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

  setDrawingEnabled(on: boolean): void {
    this.anno?.setDrawingEnabled(on);
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

  // ---- zoom and pan -------------------------------------------------------------------------
  fit(): void {
    const vw = this.viewport.clientWidth || 800;
    const vh = this.viewport.clientHeight || 600;
    this.setZoom(Math.min(vw / this.natural.w, vh / this.natural.h) * 0.98);
  }

  zoomBy(factor: number, cx?: number, cy?: number): void {
    const rect = this.viewport.getBoundingClientRect();
    const px = cx ?? rect.width / 2;
    const py = cy ?? rect.height / 2;
    const ix = (this.viewport.scrollLeft + px - this.stage.offsetLeft) / this.zoom;
    const iy = (this.viewport.scrollTop + py - this.stage.offsetTop) / this.zoom;
    this.setZoom(this.zoom * factor);
    this.viewport.scrollLeft = ix * this.zoom + this.stage.offsetLeft - px;
    this.viewport.scrollTop = iy * this.zoom + this.stage.offsetTop - py;
  }

  get zoomLevel(): number {
    return this.zoom;
  }

  private setZoom(z: number): void {
    this.zoom = Math.max(0.05, Math.min(20, z));
    this.img.style.width = `${this.natural.w * this.zoom}px`;
    this.img.style.height = `${this.natural.h * this.zoom}px`;
    this.element.dispatchEvent(new CustomEvent("zoom", { detail: this.zoom }));
  }

  private bindPan(): void {
    const onWheel = (e: WheelEvent) => {
      if (!e.ctrlKey && !e.metaKey) return;
      e.preventDefault();
      const rect = this.viewport.getBoundingClientRect();
      this.zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - rect.left, e.clientY - rect.top);
    };
    let panning: { x: number; y: number; sl: number; st: number } | null = null;
    const onDown = (e: PointerEvent) => {
      if (e.button === 1 || (e.button === 0 && this.spaceDown)) {
        e.preventDefault();
        e.stopPropagation();
        panning = { x: e.clientX, y: e.clientY, sl: this.viewport.scrollLeft, st: this.viewport.scrollTop };
        this.viewport.classList.add("panning");
      }
    };
    const onMove = (e: PointerEvent) => {
      if (!panning) return;
      e.preventDefault();
      e.stopPropagation();
      this.viewport.scrollLeft = panning.sl - (e.clientX - panning.x);
      this.viewport.scrollTop = panning.st - (e.clientY - panning.y);
    };
    const onUp = () => {
      panning = null;
      this.viewport.classList.remove("panning");
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.code === "Space" && !(e.target instanceof HTMLInputElement)) {
        this.spaceDown = e.type === "keydown";
        this.anno?.setDrawingEnabled(this.editable && !this.spaceDown);
        this.viewport.classList.toggle("can-pan", this.spaceDown);
        if (e.type === "keydown") e.preventDefault();
      }
    };
    this.viewport.addEventListener("wheel", onWheel, { passive: false });
    this.viewport.addEventListener("pointerdown", onDown, true);
    window.addEventListener("pointermove", onMove, true);
    window.addEventListener("pointerup", onUp, true);
    window.addEventListener("keydown", onKey);
    window.addEventListener("keyup", onKey);
    this.cleanups.push(() => {
      window.removeEventListener("pointermove", onMove, true);
      window.removeEventListener("pointerup", onUp, true);
      window.removeEventListener("keydown", onKey);
      window.removeEventListener("keyup", onKey);
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
    shape: { bbox: a.bbox, polygon: a.polygons && a.polygons.length ? a.polygons[0] : null },
  };
}

export function regionItems(regions: number[][]): { item: CanvasItem; shape: Shape }[] {
  return regions.map((ring, i) => {
    const xs = ring.filter((_, j) => j % 2 === 0);
    const ys = ring.filter((_, j) => j % 2 === 1);
    return {
      item: { localId: `r${i}-${Date.now()}`, kind: "region" as Kind, label: "training region", score: null, reviewState: null },
      shape: { bbox: [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)] as [number, number, number, number], polygon: ring },
    };
  });
}
