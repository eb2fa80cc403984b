import { api, setLayer, type ApiError, type Effort, type FormatInfo, type ImportReport, type Job, type LayerDeleted, type LayerInfo, type Overview } from "../api";
import { can, go, type PageContext } from "../app";
import { h, clear, showError, toast, num, ago, duration, spinner } from "../dom";

function stepHref(slug: string, action: string, label?: string): string {
  switch (action) {
    case "upload":
    case "annotate":
      return `#/p/${slug}/annotate${label ? `?label=${encodeURIComponent(label)}` : ""}`;
    case "review":
      return `#/p/${slug}/review`;
    case "train":
      return `#/p/${slug}/train`;
    case "preannotate":
      return `#/p/${slug}/review?preannotate=1`;
    case "parent": // the parent layer's regions come first: annotate there
      return `#/p/${slug}/annotate?layer=${encodeURIComponent(label ?? "")}`;
    default:
      return `#/p/${slug}/next`;
  }
}

function classBars(ov: Overview): HTMLElement {
  const target = ov.stats.target_per_class;
  const max = Math.max(target, ...ov.stats.classes.map((c) => c.annotations));
  return h(
    "div",
    { class: "bars" },
    ov.stats.classes.map((c) =>
      h(
        "div",
        { class: "bar-row" },
        h("span", { class: "bar-label" }, h("i", { class: "swatch", style: { background: c.color } }), c.name),
        h(
          "div",
          { class: "bar-track" },
          h("div", { class: "bar-fill", style: { width: `${(100 * c.annotations) / max}%`, background: c.color } }),
          h("div", { class: "bar-target", style: { left: `${(100 * target) / max}%` }, title: `target ${target}` }),
        ),
        h("span", { class: `bar-value ${c.missing ? "" : "ok"}` }, `${c.annotations}`, h("span", { class: "muted" }, ` / ${target}`)),
      ),
    ),
  );
}

function transferCard(slug: string, formats: FormatInfo[]): HTMLElement {
  const fmt = h("select", { "data-testid": "export-format" }, formats.filter((f) => f.can_write).map((f) => h("option", { value: f.name }, f.name)));
  const proposals = h("input", { type: "checkbox" });
  const link = h("a", { class: "btn", href: "#", download: "" }, "Download zip");
  const update = () => {
    link.href = api.url(`/api/projects/${slug}/export`, { format: fmt.value, include_proposals: proposals.checked || null });
  };
  fmt.addEventListener("change", update);
  proposals.addEventListener("change", update);
  update();
  const file = h("input", { type: "file", accept: ".zip,.json,.xml,.txt,.csv,.yaml" });
  const importBtn = h(
    "button",
    {
      class: "btn",
      onclick: async () => {
        if (!file.files?.length) {
          toast("Choose a zip or an annotation file first");
          return;
        }
        const form = new FormData();
        form.append("file", file.files[0]);
        importBtn.disabled = true;
        try {
          const r = await api.post<ImportReport>(`/api/projects/${slug}/import`, form);
          toast(`Imported ${r.images_added} images and ${r.annotations_added} annotations (${r.format})`, "ok");
          go(`#/p/${slug}`);
        } catch (err) {
          showError(err);
        } finally {
          importBtn.disabled = false;
        }
      },
    },
    "Import",
  );
  return h(
    "section",
    { class: "card" },
    h("h2", null, "Import and export"),
    h("div", { class: "row" }, h("label", { class: "inline" }, "Format", fmt), h("label", { class: "inline check" }, proposals, "include proposals"), link),
    can("data.import") ? h("div", { class: "row" }, file, importBtn) : null,
  );
}

/** After a rename or a delete: keep working on the same layer (or the first one when it is gone). */
function layerChanged(slug: string, l: LayerInfo, first: boolean, renamed: string | null): void {
  if (l.current) setLayer(slug, first || renamed === null ? "" : renamed);
  go(`#/p/${slug}`);
}

/** Rename (any layer) and delete (not the first, nor a parent of another): each in place, delete asks first. */
function layerActions(slug: string, l: LayerInfo, first: boolean, layers: LayerInfo[]): HTMLElement | null {
  const path = `/api/projects/${slug}/layers/${encodeURIComponent(l.name)}`;
  const box = h("div", { class: "layer-actions row", "data-testid": `layer-actions-${l.name}` });
  const children = layers.filter((c) => c.parent === l.name).map((c) => c.name);
  const show = (...items: (HTMLElement | null)[]) => { clear(box); box.append(...items.filter((x): x is HTMLElement => x !== null)); };
  const renameForm = () => {
    const input = h("input", { value: l.name, "aria-label": `new name of ${l.name}`, "data-testid": "layer-new-name" });
    const save = async () => {
      const name = input.value.trim();
      if (!name || name === l.name) return idle();
      try {
        await api.patch<LayerInfo[]>(path, { name });
        toast(`Layer ${l.name} is now ${name}`, "ok");
        layerChanged(slug, l, first, name);
      } catch (err) {
        showError(err);
      }
    };
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") void save(); if (e.key === "Escape") idle(); });
    show(input, h("button", { class: "btn small primary", onclick: save }, "Save"), h("button", { class: "btn small ghost", onclick: idle }, "Cancel"));
    input.focus();
    input.select();
  };
  const deleteAsk = () => {
    const work = l.classes.reduce((n, c) => n + c.count, 0);
    const remove = async () => {
      try {
        const out = await api.del<LayerDeleted>(path);
        toast(`Layer ${out.layer} deleted with ${out.annotations} annotations and ${out.models} models; the images stay`, "ok");
        layerChanged(slug, l, first, null);
      } catch (err) {
        showError(err);
      }
    };
    show(
      h("span", { class: "small warn" }, `Delete ${l.name}: its classes, ${work} labelled objects, proposals and models? The images stay.`),
      h("button", { class: "btn small danger", onclick: remove, "data-testid": "layer-delete-confirm" }, "Delete"),
      h("button", { class: "btn small ghost", onclick: idle }, "Keep it"),
    );
  };
  const idle = () =>
    show(
      can("classes.edit") ? h("button", { class: "btn small ghost", onclick: renameForm, "data-testid": "layer-rename" }, "Rename") : null,
      !first && can("project.delete")
        ? h("button", {
            class: "btn small ghost", onclick: deleteAsk, "data-testid": "layer-delete", disabled: children.length > 0,
            title: children.length ? `delete ${children.join(", ")} first: ${children.length > 1 ? "they are" : "it is"} inside ${l.name}` : `delete ${l.name}`,
          }, "Delete")
        : null,
    );
  idle();
  return box.childElementCount ? box : null;
}

/** Each layer (regions, the objects inside them) with its classes' progress to the target; switch, or add one. */
function layersCard(slug: string, layers: LayerInfo[]): HTMLElement {
  const rows = layers.map((l, i) =>
    h(
      "div",
      { class: `layer-row ${l.current ? "current" : ""}`, "data-testid": `layer-${l.name}` },
      h(
        "div",
        null,
        l.current ? h("b", null, l.name) : h("a", { href: "#", onclick: (e: Event) => { e.preventDefault(); setLayer(slug, i === 0 ? "" : l.name); go(`#/p/${slug}`); } }, l.name),
        h("div", { class: "muted small" }, `${l.kind}${l.parent ? ` inside ${l.parent}` : ""} · ${l.labelled_images}/${l.images} images labelled`),
        layerActions(slug, l, i === 0, layers),
      ),
      h(
        "div",
        { class: "bars" },
        l.classes.length
          ? l.classes.map((c) => h("div", { class: "bar-row" }, h("span", { class: "bar-label" }, c.name), h("div", { class: "bar-track" }, h("div", { class: "bar-fill", style: { width: `${Math.min(100, (100 * c.count) / Math.max(1, c.target))}%` } })), h("span", { class: `bar-value ${c.count >= c.target ? "ok" : ""}` }, `${c.count}`, h("span", { class: "muted" }, ` / ${c.target}`))))
          : h("span", { class: "muted small" }, "no classes yet"),
      ),
    ),
  );
  const name = h("input", { placeholder: "new layer, e.g. cells", "data-testid": "layer-name" });
  const kind = h("select", { "data-testid": "layer-kind" }, ["detect", "segment", "regions"].map((k) => h("option", { value: k }, k)));
  const parent = h("select", { "data-testid": "layer-parent" }, h("option", { value: "" }, "no parent"), layers.map((l) => h("option", { value: l.name }, `inside ${l.name}`)));
  const labels = h("input", { placeholder: "classes: cell,nucleus", "data-testid": "layer-labels" });
  const add = h("button", {
    class: "btn",
    onclick: async () => {
      try {
        await api.post<LayerInfo[]>(`/api/projects/${slug}/layers`, { name: name.value.trim(), kind: kind.value, parent: parent.value || null, labels: labels.value.split(",").map((x) => x.trim()).filter(Boolean) });
        setLayer(slug, name.value.trim());
        toast(`Layer ${name.value.trim()} added: you are working on it now`, "ok");
        go(`#/p/${slug}`);
      } catch (err) {
        showError(err);
      }
    },
  }, "Add layer");
  return h(
    "section",
    { class: "card layers-card", "data-testid": "layers" },
    h("h2", null, "Layers", h("span", { class: "muted small" }, " regions, and the objects counted inside them")),
    rows,
    can("classes.edit") ? h("div", { class: "row" }, name, kind, parent, labels, add) : null,
  );
}

export async function homePage({ root, params }: PageContext): Promise<void> {
  const slug = params.slug;
  root.append(spinner());
  const [ov, jobs, effort, formats, layers] = await Promise.all([
    api.get<Overview>(`/api/projects/${slug}/overview`),
    api.get<Job[]>(`/api/projects/${slug}/jobs`, { limit: 6 }),
    api.get<Effort>(`/api/projects/${slug}/effort`).catch((e: ApiError) => ({ __error: e })),
    api.get<FormatInfo[]>("/api/formats"),
    api.get<LayerInfo[]>(`/api/projects/${slug}/layers`),
  ]);
  const s = ov.stats;
  const primary = ov.next[0];
  const effortBox =
    "__error" in effort
      ? h("div", { class: "kpi" }, h("span", { class: "kpi-label" }, "Human time saved"), h("b", { class: "muted" }, "–"), h("span", { class: "muted small" }, effort.__error.message))
      : h("div", { class: "kpi" }, h("span", { class: "kpi-label" }, "Human time saved"), h("b", null, savedText(effort)), h("span", { class: "muted small" }, effortDetail(effort)));
  clear(
    root,
    h("div", { class: "page-head" }, h("h1", null, slug), h("p", { class: "muted" }, `${s.images.total.toLocaleString()} images · ${s.annotations.total.toLocaleString()} annotations`)),
    primary
      ? h(
          "a",
          { class: "next-step card", href: stepHref(slug, primary.action, primary.layer ?? primary.label ?? undefined), "data-testid": "next-step" },
          h("span", { class: "next-kicker" }, "Next step"),
          h("span", { class: "next-text" }, primary.text),
          h("span", { class: "next-go" }, "→"),
        )
      : null,
    h(
      "div",
      { class: "kpis" },
      h("div", { class: "kpi" }, h("span", { class: "kpi-label" }, "Current model"), ov.model ? h("b", null, `round ${ov.model.round}`) : h("b", { class: "muted" }, "none yet"), h("span", { class: "muted small" }, ov.model ? `${ov.model.metric ?? "mAP"} ${num(ov.model.value)}` : "train one when every class has ~20")),
      h("div", { class: "kpi" }, h("span", { class: "kpi-label" }, "Proposals waiting"), h("b", null, s.annotations.proposals.toLocaleString()), h("a", { class: "small", href: `#/p/${slug}/review` }, "review →")),
      h("div", { class: "kpi" }, h("span", { class: "kpi-label" }, "Images"), h("b", null, s.images.total.toLocaleString()), h("span", { class: "muted small" }, Object.entries(s.images.by_status).map(([k, v]) => `${v} ${k}`).join(" · ") || "none yet")),
      effortBox,
    ),
    h(
      "div",
      { class: "two-col" },
      h("section", { class: "card" }, h("h2", null, "Annotations per class", h("span", { class: "muted small" }, ` target ${s.target_per_class} each`)), s.classes.length ? classBars(ov) : h("p", { class: "muted" }, "No classes yet."), ov.next.length > 1 ? h("div", { class: "more-steps" }, h("h3", null, "Also"), ov.next.slice(1).map((n) => h("a", { class: "step-link", href: stepHref(slug, n.action, n.layer ?? n.label ?? undefined) }, n.text))) : null),
      h(
        "section",
        { class: "card" },
        h("h2", null, "Recent jobs"),
        jobs.length
          ? h("ul", { class: "job-list" }, jobs.map((j) => h("li", null, h("span", { class: `status status-${j.status}` }, j.status), h("b", null, j.kind), h("span", { class: "muted small" }, ` ${ago(j.created_at)} by ${j.created_by}`), j.error ? h("div", { class: "form-error small" }, j.error) : h("div", { class: "muted small" }, j.message))))
          : h("p", { class: "muted" }, "No jobs yet."),
      ),
    ),
    layersCard(slug, layers),
    transferCard(slug, formats),
  );
}

// Savings exist only once a model pre-annotates (rounds after 0); before that the card shows the time spent.
function hasModelRounds(total: Effort["total"]): boolean {
  return typeof total.ratio_after_round0 === "number";
}

function savedText(effort: Effort): string {
  const total = effort.total;
  if (!hasModelRounds(total)) return "–";
  const saved = total.seconds_scratch - total.seconds_loop;
  return saved > 0 ? duration(saved) : "none yet";
}

function effortDetail(effort: Effort): string {
  const total = effort.total;
  if (!hasModelRounds(total)) return `${duration(total.seconds_loop)} of annotation so far; savings count once a model pre-annotates`;
  const pct = Math.round((1 - (total.ratio ?? 1)) * 100);
  const share = total.share_of_saving_after_round0;
  // how much of what a perfect model would save the loop realised in the model rounds
  const ofAchievable = typeof share === "number" ? `; ${Math.round(share * 100)}% of the achievable saving since the first model` : "";
  return `${duration(total.seconds_loop)} spent instead of ${duration(total.seconds_scratch)}${pct > 0 ? ` (${pct}% saved)` : ""}${ofAchievable}`;
}
