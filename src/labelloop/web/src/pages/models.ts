// Models: metrics per epoch, per-class AP, lineage, compare, export (ONNX, CVAT function).
import { api, type ModelComparison, type ModelRecord } from "../api";
import type { Cleanup, PageContext } from "../app";
import { LineChart } from "../charts";
import { h, clear, showError, emptyState, num, ago } from "../dom";

function classAp(m: ModelRecord): Record<string, number> {
  const per = m.metrics.ap_per_class ?? m.metrics.per_class_ap ?? m.metrics.iou_per_class;
  return (per ?? {}) as Record<string, number>;
}

export async function modelsPage({ root, params }: PageContext): Promise<Cleanup> {
  const slug = params.slug;
  const base = `/api/projects/${slug}`;
  const models = await api.get<ModelRecord[]>(`${base}/models`);
  if (!models.length) {
    root.append(emptyState("No models yet", "Train a model once every class has about 20 annotations.", h("a", { class: "btn primary", href: `#/p/${slug}/train` }, "Go to Train")));
    return () => undefined;
  }
  const compare = new Set<number>();
  const detail = h("div", { class: "model-detail" });
  const compareBox = h("div", { class: "compare-box" });
  const compareBtn = h("button", { class: "btn small", disabled: true, onclick: () => void runCompare() }, "Compare selected");
  let chart: LineChart | null = null;
  const table = h(
    "table",
    { class: "table", "data-testid": "models-table" },
    h("thead", null, h("tr", null, h("th", null, ""), h("th", null, "model"), h("th", null, "base"), h("th", null, "status"), h("th", null, "mAP@.5"), h("th", null, "best epoch"), h("th", null, "trained"))),
    h(
      "tbody",
      null,
      [...models].reverse().map((m) =>
        h(
          "tr",
          { class: "clickable", "data-model": String(m.id), onclick: () => void show(m.id) },
          h("td", null, h("input", { type: "checkbox", onclick: (e: Event) => e.stopPropagation(), onchange: (e: Event) => { (e.target as HTMLInputElement).checked ? compare.add(m.id) : compare.delete(m.id); compareBtn.disabled = compare.size < 2; } })),
          h("td", null, h("b", null, m.name), h("span", { class: "muted small" }, ` #${m.id}`)),
          h("td", null, m.base),
          h("td", null, h("span", { class: `status status-${m.status}` }, m.status)),
          h("td", null, num(m.metrics?.map50)),
          h("td", null, m.best_epoch ?? "–"),
          h("td", { class: "muted small" }, ago(m.finished_at ?? m.created_at)),
        ),
      ),
    ),
  );
  root.append(h("div", { class: "page-head" }, h("h1", null, "Models"), compareBtn), h("section", { class: "card" }, table), compareBox, detail);

  async function show(id: number): Promise<void> {
    for (const tr of table.querySelectorAll<HTMLElement>("tr[data-model]")) tr.classList.toggle("selected", tr.dataset.model === String(id));
    history.replaceState(null, "", `#/p/${slug}/models/${id}`);
    try {
      const m = await api.get<ModelRecord>(`${base}/models/${id}`);
      chart?.destroy();
      chart = new LineChart("Validation per epoch", "epoch", ["map50"], 240);
      const epochs = m.epochs ?? [];
      const keys = [...new Set(epochs.flatMap((e) => Object.keys(e.metrics).filter((k) => typeof e.metrics[k] === "number" && /map|iou/i.test(k))))].slice(0, 4);
      const perClass: Record<string, number> = classAp(m);
      const maxAp = Math.max(0.01, ...Object.values(perClass));
      clear(
        detail,
        h(
          "div",
          { class: "two-col" },
          h("section", { class: "card" }, h("h2", null, `${m.name} `, h("span", { class: "muted small" }, `#${m.id} · ${m.base} · round ${m.round}`)), chart.element, m.error ? h("p", { class: "form-error" }, m.error) : null),
          h(
            "section",
            { class: "card" },
            h("h2", null, "Per-class AP"),
            Object.keys(perClass).length
              ? h("div", { class: "bars" }, Object.entries(perClass).map(([c, v]) => h("div", { class: "bar-row" }, h("span", { class: "bar-label" }, c), h("div", { class: "bar-track" }, h("div", { class: "bar-fill", style: { width: `${(100 * v) / maxAp}%` } })), h("span", { class: "bar-value" }, num(v)))))
              : h("p", { class: "muted" }, "Not measured yet."),
            predictionSize(m),
            h("h2", null, "Lineage"),
            h("ol", { class: "lineage" }, (m.lineage ?? []).map((l) => h("li", { class: l.id === m.id ? "current" : "" }, h("b", null, l.name), ` #${l.id} · ${l.base} · mAP@.5 ${num(l.map50)}`, l.train_images != null ? h("span", { class: "muted small" }, ` · ${l.train_images} training images`) : null))),
            h("h2", null, "Export"),
            h("div", { class: "row" }, h("a", { class: "btn", href: `${base}/models/${m.id}/export?format=onnx`, download: "" }, "ONNX"), h("a", { class: "btn", href: `${base}/models/${m.id}/export?format=cvat-function`, download: "" }, "CVAT function")),
          ),
        ),
      );
      if (keys.length) chart.setData(epochs.map((e) => e.epoch), keys.map((k) => epochs.map((e) => (e.metrics[k] as number | undefined) ?? null)), keys);
    } catch (err) {
      showError(err);
    }
  }

  async function runCompare(): Promise<void> {
    try {
      const r = await api.get<ModelComparison>(`${base}/models/compare`, { ids: [...compare].join(",") });
      const rows: [string, (m: ModelRecord) => string][] = [
        ["base", (m) => m.base],
        ["round", (m) => String(m.round)],
        ["mAP@.5", (m) => num(m.metrics?.map50)],
        ["mAP", (m) => num(m.metrics?.map)],
        ["best epoch", (m) => String(m.best_epoch ?? "–")],
        ["training images", (m) => String(m.snapshot?.n_train_images ?? "–")],
      ];
      clear(
        compareBox,
        h(
          "section",
          { class: "card" },
          h("h2", null, "Comparison"),
          h(
            "table",
            { class: "table" },
            h("thead", null, h("tr", null, h("th", null, ""), r.models.map((m) => h("th", null, `${m.name} #${m.id}`)))),
            h("tbody", null, rows.map(([label, f]) => h("tr", null, h("th", null, label), r.models.map((m) => h("td", null, f(m))))), [...new Set(r.models.flatMap((m) => Object.keys(classAp(m))))].map((c) => h("tr", null, h("th", null, `AP ${c}`), r.models.map((m) => h("td", null, num(classAp(m)[c])))))),
          ),
        ),
      );
    } catch (err) {
      showError(err);
    }
  }

  const initial = params.model ? Number(params.model) : models[models.length - 1].id;
  await show(initial);
  return () => chart?.destroy();
}

/** The size the model predicts at, beside the review seconds per validation image of each size its training compared. */
function predictionSize(m: ModelRecord): HTMLElement | null {
  const p = m.prediction;
  if (!p) return null;
  const most = Math.max(0.01, ...p.compared.map((c) => c.seconds_per_image));
  return h(
    "div",
    { class: "prediction-size" },
    h("h2", null, "Prediction size"),
    h("p", { class: "muted small" }, `Predicts at ${p.predict_size} px (trained at ${p.input_size} px)${p.compared.length ? ": the size whose proposals took the least review time per validation image" : ""}.`),
    p.compared.length
      ? h(
          "div",
          { class: "bars" },
          p.compared.map((c) => h("div", { class: c.size === p.predict_size ? "bar-row current" : "bar-row" }, h("span", { class: "bar-label" }, `${c.size} px`), h("div", { class: "bar-track" }, h("div", { class: "bar-fill", style: { width: `${(100 * c.seconds_per_image) / most}%` } })), h("span", { class: "bar-value" }, `${c.seconds_per_image.toFixed(1)} s`))),
        )
      : null,
  );
}
