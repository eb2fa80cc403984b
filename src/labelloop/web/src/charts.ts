// Line charts with uPlot: live loss and mAP curves.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h } from "./dom";

const PALETTE = ["#4f46e5", "#e11d48", "#059669", "#d97706", "#0891b2", "#7c3aed", "#65a30d"];

export class LineChart {
  readonly element: HTMLElement;
  private plot: uPlot | null = null;
  private resize: ResizeObserver;

  constructor(private title: string, private xLabel: string, private names: string[], private height = 220) {
    this.element = h("div", { class: "chart" });
    this.resize = new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: this.height }));
    this.resize.observe(this.element);
  }

  private width(): number {
    return Math.max(280, this.element.clientWidth - 4);
  }

  setData(xs: number[], ys: (number | null)[][], names?: string[]): void {
    if (names && names.join() !== this.names.join()) {
      this.names = names;
      this.plot?.destroy();
      this.plot = null;
    }
    const data = [xs, ...ys] as uPlot.AlignedData;
    if (!this.plot) {
      this.plot = new uPlot(
        {
          title: this.title,
          width: this.width(),
          height: this.height,
          scales: { x: { time: false } },
          axes: [{ label: this.xLabel, stroke: "#64748b", grid: { stroke: "#eef2f7" }, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] }, { stroke: "#64748b", grid: { stroke: "#eef2f7" } }],
          series: [{ label: this.xLabel }, ...this.names.map((n, i) => ({ label: n, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: xs.length < 40 } }))],
          legend: { live: true },
        },
        data,
        this.element,
      );
    } else {
      this.plot.setData(data);
    }
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot?.destroy();
  }
}
