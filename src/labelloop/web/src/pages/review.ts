// Review: model proposals coloured by confidence; A accept, R reject, edit by dragging, Shift+A
// accept all on the image; the queue sorts by confidence or by suggestion rank.
import { api, ApiError, type AnnotationData, type ClassInfo, type ImageDetail, type Job, type AcceptedCount, type ParentRegion, type QueueItem, type ReviewQueue } from "../api";
import { can, type Cleanup, type PageContext } from "../app";
import { ImageCanvas, editBody, imageSource, itemFromApi, parentItems, parentStyle, type CanvasItem, type Shape } from "../canvas";
import { h, clear, toast, showError, emptyState, confidenceColor } from "../dom";
import { jobCard, watchJob, type JobWatch } from "../jobs";
import { bindKeys } from "../keys";

export async function reviewPage({ root, params, query }: PageContext): Promise<Cleanup> {
  const slug = params.slug;
  const base = `/api/projects/${slug}`;
  const classes = await api.get<ClassInfo[]>(`${base}/classes`);
  const color = (label: string) => classes.find((c) => c.name === label)?.color ?? "#888";
  let sort = query.get("sort") ?? "confidence";
  let minScore = "";
  let queue: QueueItem[] = [];
  let detail: ImageDetail | null = null;
  let focus: number | null = null; // annotation id with keyboard focus
  let watch: JobWatch | null = null;

  let parentRegions: ParentRegion["regions"] = []; // a child layer's image: its parent's regions, drawn faintly
  const style = (item: CanvasItem, selected: boolean) => {
    if (item.kind === "parent") return parentStyle(item);
    const open = item.reviewState === "proposed";
    const c = open ? confidenceColor(item.score) : color(item.label);
    const focused = item.localId === `a${focus}`;
    return { fill: c, stroke: c, fillOpacity: selected || focused ? 0.35 : open ? 0.1 : 0.04, strokeWidth: focused ? 4 : open ? 2.5 : 1.5 };
  };
  const canvas = new ImageCanvas(
    {
      onUpdate: (localId, shape) => void edit(localId, shape),
      onSelect: (ids) => {
        const id = ids[0] ? Number(ids[0].slice(1)) : null;
        if (id) focus = id;
        renderList();
      },
      onCreate: (localId) => canvas.remove(localId),
      onPoint: (x, y) => void clickToBox(x, y),
    },
    style,
    can("review"),
  );
  canvas.setDrawingEnabled(false);
  canvas.setSelectable((item) => item?.kind !== "parent");

  const queueList = h("div", { class: "queue-list", "data-testid": "review-queue" });
  const queueInfo = h("div", { class: "muted small pad" });
  const propList = h("div", { class: "prop-list", "data-testid": "proposals" });
  const title = h("div", { class: "image-title" });
  const jobBox = h("div", { class: "job-slot" });
  const sortSel = h("select", { class: "small", onchange: () => { sort = sortSel.value; void loadQueue(); } }, [["confidence", "least confident first"], ["-confidence", "most confident first"], ["rank", "suggestion rank"], ["id", "image order"]].map(([v, t]) => h("option", { value: v, selected: v === sort }, t)));
  const minSel = h("select", { class: "small", onchange: () => { minScore = minSel.value; void loadQueue(); } }, [["", "any score"], ["0.5", "score ≥ 50%"], ["0.8", "score ≥ 80%"]].map(([v, t]) => h("option", { value: v }, t)));
  // the proposal threshold pre-annotation uses: the least human time (default), best F1, or one score for every class
  const thresholdSel = h("select", { class: "small", title: "which proposals pre-annotation keeps", "data-testid": "preannotate-threshold" },
    [["auto", "thresholds: least review time"], ["best-f1", "thresholds: best F1"], ["0.05", "every candidate (score ≥ 5%)"], ["0.3", "score ≥ 30%"], ["0.5", "score ≥ 50%"], ["0.7", "score ≥ 70%"]].map(([v, t]) => h("option", { value: v }, t)));
  let pointMode = false;
  const clickBtn = h("button", { class: "btn tool", title: "click-to-box: click an object the model missed and its best box there is added, with the model's class (M, or Alt+click)", onclick: () => togglePoint(), "data-tool": "click" }, "Click-to-box", h("kbd", null, "M"));
  const acceptAllBtn = h("button", { class: "btn primary", title: "Shift+A", onclick: () => void acceptAll(), "data-testid": "accept-all" }, "Accept all on image");

  root.append(
    h(
      "div",
      { class: "workbench" },
      h(
        "aside",
        { class: "side left" },
        h("div", { class: "side-head" }, h("b", null, "To review")),
        h("div", { class: "filters" }, sortSel, minSel),
        can("jobs.run") ? h("div", { class: "filters" }, thresholdSel) : null,
        can("jobs.run") ? h("button", { class: "btn wide", onclick: () => void preannotate(), "data-testid": "preannotate" }, "Pre-annotate unlabelled images") : null,
        jobBox,
        queueInfo,
        queueList,
      ),
      h(
        "section",
        { class: "center" },
        h("div", { class: "toolbar" }, title, h("span", { class: "spacer" }), h("span", { class: "legend" }, h("i", { class: "swatch", style: { background: confidenceColor(0.1) } }), "low", h("i", { class: "swatch", style: { background: confidenceColor(0.5) } }), "mid", h("i", { class: "swatch", style: { background: confidenceColor(0.95) } }), "high confidence"), can("annotate") ? clickBtn : null, h("button", { class: "btn", onclick: () => canvas.fit() }, "Fit")),
        canvas.element,
        h("div", { class: "hints muted small" }, "A accept · R reject · Tab next proposal · drag a box to edit it · M or Alt+click: add the model's box at a missed object · Shift+A accept all · → next image"),
      ),
      h("aside", { class: "side right" }, h("div", { class: "side-head" }, h("b", null, "Proposals")), acceptAllBtn, propList),
    ),
  );

  async function loadQueue(): Promise<void> {
    const r = await api.get<ReviewQueue>(`${base}/review-queue`, { sort, min_score: minScore });
    queue = r.items;
    queueInfo.textContent = `${r.proposals} proposals on ${r.images} images`;
    clear(
      queueList,
      queue.map((q) =>
        h(
          "button",
          { class: `queue-item ${q.image_id === detail?.id ? "current" : ""}`, "data-image": String(q.image_id), onclick: () => void openImage(q.image_id) },
          h("img", { src: `${base}/images/${q.image_id}/thumb?size=128`, loading: "lazy", alt: "" }),
          h("span", { class: "q-name" }, q.file_name),
          h("span", { class: "q-meta" }, `${q.proposals} · `, h("b", { style: { color: confidenceColor(q.mean_score) } }, q.mean_score != null ? `${Math.round(q.mean_score * 100)}%` : "–")),
        ),
      ),
    );
    if (!queue.length && !detail) canvas.element.replaceChildren(emptyState("Nothing to review", "When a model has pre-annotated images, its proposals show up here.", can("jobs.run") ? h("button", { class: "btn primary", onclick: () => void preannotate() }, "Pre-annotate unlabelled images") : null));
  }

  async function openImage(id: number): Promise<void> {
    try {
      detail = await api.get<ImageDetail>(`${base}/images/${id}`);
    } catch (err) {
      showError(err);
      return;
    }
    history.replaceState(null, "", `#/p/${slug}/review/${id}`);
    clear(title, h("b", null, detail.file_name), h("span", { class: "muted small" }, ` ${detail.width}×${detail.height}`));
    const [parent] = await Promise.all([
      api.get<ParentRegion>(`${base}/images/${id}/parent-regions`).catch(() => null),
      canvas.load(imageSource(base, detail)),
    ]);
    parentRegions = parent?.regions ?? [];
    canvas.setDrawingEnabled(false);
    show(detail.annotations);
    if (pointMode) void api.post(`${base}/images/${id}/candidates`).catch(() => undefined);
    for (const el of queueList.querySelectorAll<HTMLElement>(".queue-item")) el.classList.toggle("current", el.dataset.image === String(id));
  }

  function togglePoint(on = !pointMode): void {
    pointMode = on;
    canvas.setPointMode(on);
    clickBtn.classList.toggle("active", on);
    if (on && detail) void api.post(`${base}/images/${detail.id}/candidates`).catch(() => undefined);
  }

  async function clickToBox(x: number, y: number): Promise<void> {
    if (!detail || !can("annotate")) return;
    const imageId = detail.id;
    try {
      const a = await api.post<AnnotationData>(`${base}/images/${imageId}/click`, { x, y });
      if (detail && detail.id === imageId) show([...detail.annotations, a]);
      toast(`Added ${a.label}`, "ok");
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) toast("The model found nothing there", "info", err.hint ?? "draw it on the annotate page");
      else showError(err);
    }
  }

  function open(): AnnotationData[] {
    return (detail?.annotations ?? []).filter((a) => a.review_state === "proposed").sort((a, b) => (b.score ?? 0) - (a.score ?? 0));
  }

  function show(anns: AnnotationData[]): void {
    if (!detail) return;
    detail.annotations = anns;
    const firstOpen = open()[0];
    if (!anns.some((a) => a.id === focus && a.review_state === "proposed")) focus = firstOpen?.id ?? null;
    canvas.setItems([...parentItems(parentRegions), ...anns.map(itemFromApi)]);
    renderList();
  }

  function renderList(): void {
    if (!detail) return;
    const anns = [...detail.annotations].sort((a, b) => Number(b.review_state === "proposed") - Number(a.review_state === "proposed") || (b.score ?? 0) - (a.score ?? 0));
    acceptAllBtn.disabled = !open().length || !can("review");
    clear(
      propList,
      anns.length
        ? anns.map((a) =>
            h(
              "div",
              { class: `prop-row ${a.id === focus ? "focus" : ""} state-${a.review_state ?? "human"}`, "data-annotation": String(a.id), onclick: () => { focus = a.id; canvas.select(`a${a.id}`); canvas.redraw(); renderList(); } },
              h("div", { class: "prop-main" }, h("i", { class: "swatch", style: { background: color(a.label) } }), h("b", null, a.label), h("span", { class: "score", style: { color: confidenceColor(a.score) } }, a.score != null ? `${Math.round(a.score * 100)}%` : ""), h("span", { class: "pill small" }, a.review_state ?? "by hand")),
              a.review_state === "proposed" && can("review")
                ? h("div", { class: "prop-actions" }, h("button", { class: "btn ok small", onclick: (e: Event) => { e.stopPropagation(); void decide(a, "accept"); } }, "Accept ", h("kbd", null, "A")), h("button", { class: "btn danger small", onclick: (e: Event) => { e.stopPropagation(); void decide(a, "reject"); } }, "Reject ", h("kbd", null, "R")))
                : null,
            ),
          )
        : h("p", { class: "muted small" }, "No annotations on this image."),
    );
  }

  async function decide(a: AnnotationData, action: "accept" | "reject"): Promise<void> {
    try {
      const updated = await api.post<AnnotationData>(`${base}/annotations/${a.id}/review`, { action, version: a.version });
      const rest = (detail?.annotations ?? []).map((x) => (x.id === a.id ? updated : x)).filter((x) => x.review_state !== "rejected");
      show(rest);
      await afterDecision();
    } catch (err) {
      showError(err);
      if (detail) void openImage(detail.id);
    }
  }

  async function acceptAll(): Promise<void> {
    if (!detail) return;
    try {
      const r = await api.post<AcceptedCount>(`${base}/images/${detail.id}/accept-all`, {});
      toast(`Accepted ${r.accepted} proposals`, "ok");
      detail = await api.get<ImageDetail>(`${base}/images/${detail.id}`);
      show(detail.annotations);
      await afterDecision();
    } catch (err) {
      showError(err);
    }
  }

  async function afterDecision(): Promise<void> {
    if (open().length) return;
    const currentId = detail?.id;
    await loadQueue();
    const next = queue.find((q) => q.image_id !== currentId);
    if (next) await openImage(next.image_id);
    else toast("All proposals reviewed", "ok");
  }

  async function edit(localId: string, shape: Shape): Promise<void> {
    const a = detail?.annotations.find((x) => `a${x.id}` === localId);
    if (!a) return;
    try {
      const updated = await api.patch<AnnotationData>(`${base}/annotations/${a.id}`, { ...editBody(a.label, shape, a), version: a.version });
      show((detail?.annotations ?? []).map((x) => (x.id === a.id ? updated : x)));
      toast("Edited and accepted", "ok");
      await afterDecision();
    } catch (err) {
      showError(err);
      if (detail) void openImage(detail.id);
    }
  }

  async function preannotate(): Promise<void> {
    try {
      const job = await api.post<Job>(`${base}/jobs`, { kind: "preannotate", params: { images: "unlabeled", threshold: thresholdSel.value } });
      follow(job);
    } catch (err) {
      showError(err);
    }
  }

  function follow(job: Job): void {
    const card = jobCard(slug, job);
    clear(jobBox, card.element);
    watch?.close();
    watch = watchJob(slug, job.id, {
      onJob: card.update,
      onEnd: async (j) => {
        if (j?.status === "succeeded") {
          toast(j.message || "Pre-annotation finished", "ok");
          await loadQueue();
          if (!detail && queue.length) await openImage(queue[0].image_id);
        }
      },
    });
  }

  const focused = () => detail?.annotations.find((x) => x.id === focus && x.review_state === "proposed");
  const step = (by: number) => {
    const i = queue.findIndex((q) => q.image_id === detail?.id);
    const next = queue[i + by];
    if (next) void openImage(next.image_id);
  };
  const unbindKeys = bindKeys([
    { keys: ["shift+A"], run: () => void acceptAll() },
    { keys: ["a"], when: () => !!focused(), run: () => void decide(focused()!, "accept") },
    { keys: ["r"], when: () => !!focused(), run: () => void decide(focused()!, "reject") },
    { keys: ["m"], when: () => can("annotate"), run: () => togglePoint() },
    {
      keys: ["Tab"],
      run: () => {
        const list = open();
        const i = list.findIndex((x) => x.id === focus);
        focus = list.length ? list[(i + 1) % list.length].id : null;
        canvas.redraw();
        renderList();
      },
    },
    { keys: ["ArrowRight"], run: () => step(1) },
    { keys: ["ArrowLeft"], run: () => step(-1) },
  ]);

  await loadQueue();
  const start = params.image ? Number(params.image) : queue[0]?.image_id;
  if (start) await openImage(start);
  const running = (await api.get<Job[]>(`${base}/jobs`, { kind: "preannotate", limit: 1 }))[0];
  if (running && (running.status === "queued" || running.status === "running")) follow(running);
  else if (query.get("preannotate") === "1" && can("jobs.run")) void preannotate();

  return () => {
    unbindKeys();
    watch?.close();
    canvas.destroy();
  };
}
