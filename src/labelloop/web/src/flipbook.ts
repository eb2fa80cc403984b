// The flipbook: the model's predictions on fixed validation images, epoch after epoch, beside
// the ground truth. Play/pause, a slider over epochs and a score threshold.
import type { Flipbook } from "./api";
import { h, clear, confidenceColor } from "./dom";

const SVG = "http://www.w3.org/2000/svg";

function boxes(width: number, height: number, items: { label: string; bbox: number[]; score?: number }[], colorOf: (label: string, score?: number) => string): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "fb-overlay");
  svg.setAttribute("preserveAspectRatio", "none");
  const stroke = Math.max(1.5, Math.max(width, height) / 250);
  for (const it of items) {
    const [x1, y1, x2, y2] = it.bbox;
    const r = document.createElementNS(SVG, "rect");
    r.setAttribute("x", String(x1));
    r.setAttribute("y", String(y1));
    r.setAttribute("width", String(Math.max(1, x2 - x1)));
    r.setAttribute("height", String(Math.max(1, y2 - y1)));
    r.setAttribute("fill", "none");
    r.setAttribute("stroke", colorOf(it.label, it.score));
    r.setAttribute("stroke-width", String(stroke));
    const t = document.createElementNS(SVG, "title");
    t.textContent = it.score != null ? `${it.label} ${(it.score * 100).toFixed(0)}%` : it.label;
    r.appendChild(t);
    svg.appendChild(r);
  }
  return svg;
}

export class FlipbookPlayer {
  readonly element: HTMLElement;
  private index = 0;
  private timer: number | null = null;
  private threshold = 0.3;
  private grid: HTMLElement;
  private slider: HTMLInputElement;
  private label: HTMLElement;
  private playBtn: HTMLButtonElement;

  constructor(private slug: string, private data: Flipbook, private colorOf: (label: string) => string) {
    this.grid = h("div", { class: "fb-grid" });
    this.slider = h("input", { type: "range", min: "0", max: "0", value: "0", class: "fb-slider", "aria-label": "epoch", oninput: () => this.show(Number(this.slider.value)) });
    this.label = h("span", { class: "fb-epoch", "data-testid": "flipbook-epoch" });
    this.playBtn = h("button", { class: "btn small", onclick: () => this.toggle() }, "▶ Play");
    const thr = h("input", { type: "range", min: "0", max: "0.95", step: "0.05", value: String(this.threshold), oninput: () => { this.threshold = Number(thr.value); thrLabel.textContent = `score ≥ ${Math.round(this.threshold * 100)}%`; this.show(this.index); } });
    const thrLabel = h("span", { class: "muted small" }, `score ≥ ${Math.round(this.threshold * 100)}%`);
    this.element = h("div", { class: "flipbook", "data-testid": "flipbook" }, h("div", { class: "fb-controls" }, this.playBtn, this.slider, this.label, h("span", { class: "spacer" }), thr, thrLabel), this.grid);
    this.update(data);
  }

  update(data: Flipbook): void {
    const atEnd = this.index >= this.data.epochs.length - 1;
    this.data = data;
    this.slider.max = String(Math.max(0, data.epochs.length - 1));
    this.show(atEnd ? data.epochs.length - 1 : this.index);
  }

  private show(i: number): void {
    const epochs = this.data.epochs;
    if (!epochs.length || !this.data.images.length) {
      clear(this.grid, h("p", { class: "muted" }, "The flipbook fills in as epochs finish."));
      this.label.textContent = "";
      return;
    }
    this.index = Math.max(0, Math.min(i, epochs.length - 1));
    this.slider.value = String(this.index);
    const frame = epochs[this.index];
    this.label.textContent = `epoch ${frame.epoch} of ${epochs[epochs.length - 1].epoch}`;
    clear(
      this.grid,
      this.data.images.map((img) => {
        const preds = (frame.predictions[String(img.image_id)] ?? []).filter((p) => p.score >= this.threshold);
        const src = `/api/projects/${this.slug}/images/${img.image_id}/thumb?size=512`;
        return h(
          "div",
          { class: "fb-item" },
          h("div", { class: "fb-pair" }, h("figure", null, h("div", { class: "fb-img" }, h("img", { src, alt: "" }), boxes(img.width, img.height, img.ground_truth, this.colorOf)), h("figcaption", null, "ground truth")), h("figure", null, h("div", { class: "fb-img" }, h("img", { src, alt: "" }), boxes(img.width, img.height, preds, (_l, s) => confidenceColor(s))), h("figcaption", null, `epoch ${frame.epoch}: ${preds.length} predicted`))),
          h("div", { class: "muted small ellipsis" }, img.file_name),
        );
      }),
    );
  }

  private toggle(): void {
    if (this.timer !== null) {
      this.stop();
      return;
    }
    if (this.index >= this.data.epochs.length - 1) this.show(0);
    this.playBtn.textContent = "❚❚ Pause";
    this.timer = window.setInterval(() => {
      if (this.index >= this.data.epochs.length - 1) this.stop();
      else this.show(this.index + 1);
    }, 900);
  }

  stop(): void {
    if (this.timer !== null) window.clearInterval(this.timer);
    this.timer = null;
    this.playBtn.textContent = "▶ Play";
  }
}
