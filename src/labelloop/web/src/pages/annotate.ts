// Annotate: draw/edit/delete boxes and polygons with a class picker (keys 1-9), next/previous,
// zoom/pan, undo, autosave, training regions and image upload.
// The state lives in annotate-state.ts, the side panels' views in annotate-views.ts; this wires
// them to the canvas, the API and the keyboard.
import { api, ApiError, type AnnotationData, type ClassInfo, type ImageDetail, type ImagePage, type LayerInfo, type ParentRegion, type UploadReport } from "../api";
import { can, type Cleanup, type PageContext } from "../app";
import { ImageCanvas, TILED_VIEWER_MIN_SIDE, createBody, editBody, imageSource, itemFromApi, parentItems, parentStyle, regionItems, type CanvasItem, type Shape } from "../canvas";
import { h, clear, toast, showError, emptyState, confidenceColor } from "../dom";
import { bindKeys } from "../keys";
import { AnnotateState, SaveQueue, isConflict, type Tool } from "./annotate-state";
import { addClassForm, markCurrent, renderAnnList as renderAnnListView, renderClasses as renderClassesView, thumb } from "./annotate-views";

const STATUSES = ["", "new", "pre-annotated", "annotated", "reviewed", "damaged"];

export async function annotatePage({ root, params, query }: PageContext): Promise<Cleanup> {
  const slug = params.slug;
  const base = `/api/projects/${slug}`;
  const [classes, layers] = await Promise.all([api.get<ClassInfo[]>(`${base}/classes`), api.get<LayerInfo[]>(`${base}/layers`).catch(() => [])]);
  const state = new AnnotateState(classes, query.get("label"), query.get("status"));
  // a regions layer paints its classes (the background too) with a brush
  const paints = (layers.find((l) => l.current) ?? layers[0])?.kind === "regions";
  const { known, undo } = state;
  const saves = new SaveQueue(setSave, (err) => {
    if (isConflict(err)) {
      toast("Someone else changed this annotation; reloaded the image.", "error", err.hint);
      void reload();
    } else showError(err);
  });
  const enqueue = <T>(key: string, fn: () => Promise<T>) => saves.run(key, fn);

  const style = (item: CanvasItem, selected: boolean) => {
    if (item.kind === "region") return { fill: "#ffffff", stroke: "#ffffff", fillOpacity: selected ? 0.18 : 0.06, strokeWidth: 2 };
    if (item.kind === "parent") return parentStyle(item);
    const c = item.reviewState === "proposed" ? confidenceColor(item.score) : state.color(item.label);
    return { fill: c, stroke: c, fillOpacity: selected ? 0.35 : 0.12, strokeWidth: selected ? 3 : 2 };
  };

  // ---- layout -------------------------------------------------------------------------------
  const saveState = h("span", { class: "save-state", "data-testid": "save-state" }, "Saved");
  const parentNote = h("span", { class: "muted small parent-note", "data-testid": "parent-note" });
  let parentRegions: ParentRegion["regions"] = [];
  const imageTitle = h("div", { class: "image-title" });
  const zoomLabel = h("span", { class: "zoom-label" }, "100%");
  const classList = h("div", { class: "class-list" });
  const annList = h("div", { class: "ann-list" });
  const imageList = h("div", { class: "thumb-list", "data-testid": "image-list" });
  const moreBtn = h("button", { class: "btn ghost small wide" }, "Load more");
  const toolButtons = new Map<Tool, HTMLButtonElement>();
  const canvas = new ImageCanvas({ onCreate, onUpdate, onDelete, onSelect: () => renderAnnList(), onPoint: (x, y) => void clickToBox(x, y), onBrush: (points, radius) => paint(points, radius) }, style, can("annotate"));
  canvas.element.addEventListener("zoom", (e) => (zoomLabel.textContent = `${Math.round((e as CustomEvent).detail * 100)}%`));
  const uploadInput = h("input", { type: "file", multiple: true, accept: "image/*", class: "hidden", "data-testid": "upload-input", onchange: () => upload(uploadInput.files) });
  const filter = h("select", { class: "small", onchange: () => { state.statusFilter = filter.value; void loadList(true); } }, STATUSES.map((s) => h("option", { value: s, selected: s === state.statusFilter }, s === "damaged" ? "damaged files" : s || "all images")));

  const toolBtn = (t: Tool, label: string, key: string) => {
    const titles: Partial<Record<Tool, string>> = {
      region: "mark a training region: inside it the annotation is complete (T)",
      click: "click-to-box: click an object the model missed and its best box there is added (M, or Alt+click with any tool)",
      brush: "paint a region of the chosen class, the background too (U; [ and ] change the brush size)",
    };
    const b = h("button", { class: "btn tool", title: titles[t] ?? `${label} (${key})`, onclick: () => setTool(t), "data-tool": t }, label, h("kbd", null, key));
    toolButtons.set(t, b);
    return b;
  };
  const prevBtn = h("button", { class: "btn", title: "previous image (←)", onclick: () => go(state.detail?.neighbours.previous) }, "← Prev");
  const nextBtn = h("button", { class: "btn", title: "next image (→)", onclick: () => go(state.detail?.neighbours.next) }, "Next →");

  const layout = h(
    "div",
    { class: "workbench" },
    h(
      "aside",
      { class: "side left" },
      h("div", { class: "side-head" }, h("b", null, "Images"), filter),
      can("images.upload") ? h("button", { class: "btn primary wide", onclick: () => uploadInput.click() }, "Upload images") : null,
      uploadInput,
      imageList,
      moreBtn,
    ),
    h(
      "section",
      { class: "center" },
      h(
        "div",
        { class: "toolbar" },
        prevBtn,
        nextBtn,
        imageTitle,
        parentNote,
        h("span", { class: "spacer" }),
        toolBtn("rectangle", "Box", "B"),
        toolBtn("polygon", "Polygon", "P"),
        toolBtn("region", "Region", "T"),
        toolBtn("click", "Click-to-box", "M"),
        paints ? toolBtn("brush", "Brush", "U") : null,
        h("span", { class: "sep" }),
        h("button", { class: "btn", title: "undo (Ctrl+Z)", onclick: () => void undoLast() }, "Undo"),
        h("button", { class: "btn", title: "zoom out (-)", onclick: () => canvas.zoomBy(1 / 1.25) }, "−"),
        zoomLabel,
        h("button", { class: "btn", title: "zoom in (+)", onclick: () => canvas.zoomBy(1.25) }, "+"),
        h("button", { class: "btn", title: "fit (0)", onclick: () => canvas.fit() }, "Fit"),
        saveState,
      ),
      canvas.element,
      h("div", { class: "hints muted small" }, "Drag to draw · polygon: click the corners, then the first one · M or Alt+click: the model's box at a point · 1–9 class · Del delete · Ctrl+Z undo · ←/→ images · Space+drag or scroll to pan · Ctrl+wheel to zoom"),
    ),
    h(
      "aside",
      { class: "side right" },
      h("div", { class: "side-head" }, h("b", null, "Classes")),
      classList,
      can("classes.edit") ? addClassForm(addClass) : null,
      h("div", { class: "side-head" }, h("b", null, "On this image")),
      annList,
    ),
  );
  root.append(layout);

  // ---- classes ------------------------------------------------------------------------------
  function renderClasses(): void {
    renderClassesView(classList, state, chooseClass);
  }

  async function addClass(name: string): Promise<boolean> {
    try {
      state.classes = await api.post<ClassInfo[]>(`${base}/classes`, { names: [name] });
      state.current = state.classes.findIndex((c) => c.name === name);
      renderClasses();
      return true;
    } catch (err) {
      showError(err);
      return false;
    }
  }

  function chooseClass(i: number): void {
    if (i < 0 || i >= state.classes.length) return;
    state.current = i;
    renderClasses();
    if (state.tool === "brush") canvas.setBrushMode(true, state.color(state.classes[i].name));
    const selected = canvas.getSelected().filter((id) => known.has(id));
    for (const id of selected) void relabel(id, state.classes[i].name);
  }

  // A click adds a polygon corner rather than selecting what lies under it; training regions (which
  // hold the objects drawn inside them) are picked only with the region tool.
  canvas.setSelectable((item) => state.tool !== "polygon" && item?.kind !== "parent" && (item?.kind !== "region" || state.tool === "region"));

  function setTool(t: Tool): void {
    state.tool = t;
    canvas.setTool(t === "polygon" ? "polygon" : "rectangle");
    canvas.setPointMode(t === "click");
    canvas.setBrushMode(t === "brush", state.currentClass ? state.color(state.currentClass.name) : undefined);
    for (const [k, b] of toolButtons.entries()) b.classList.toggle("active", k === t);
    if (t === "click") warmCandidates();
  }

  // ---- click-to-box -------------------------------------------------------------------------
  // The server caches an image's model candidates; asking for them when the tool is picked or an
  // image is opened with it makes the first click as fast as the next ones.
  function warmCandidates(): void {
    if (state.detail && can("annotate")) void api.post(`${base}/images/${state.detail.id}/candidates`).catch(() => undefined);
  }

  async function clickToBox(x: number, y: number): Promise<void> {
    if (!state.detail || !can("annotate")) return;
    const cls = state.currentClass;
    const imageId = state.detail.id;
    setSave("Saving…");
    try {
      const a = await api.post<AnnotationData>(`${base}/images/${imageId}/click`, { x, y, label: cls?.name ?? null });
      setSave("Saved");
      if (state.detail?.id === imageId) showCreated(a);
    } catch (err) {
      setSave("Saved");
      if (err instanceof ApiError && err.status === 404) toast("The model found nothing there", "info", err.hint ?? "draw the box instead (B)");
      else showError(err);
    }
  }

  // ---- the region brush: a stroke becomes a mask of the chosen class (its outline is what shows) ----
  function paint(points: { x: number; y: number }[], radius: number): void {
    if (!state.detail || !can("annotate")) return;
    const cls = state.currentClass;
    if (!cls) {
      toast("Add a class first", "error");
      return;
    }
    if (Math.max(state.detail.width, state.detail.height) > TILED_VIEWER_MIN_SIDE) {
      toast(`The brush paints images up to ${TILED_VIEWER_MIN_SIDE} px`, "info", "draw this region with the polygon tool (P)");
      return;
    }
    const rle = strokeRle(points, radius, state.detail.width, state.detail.height);
    if (!rle) return;
    const imageId = state.detail.id;
    const localId = `brush-${Date.now()}`;
    setSave("Saving…");
    void enqueue(localId, async () => {
      const a = await api.post<AnnotationData>(`${base}/images/${imageId}/annotations`, { label: cls.name, rle, outline: true });
      if (state.detail?.id === imageId) showCreated(a);
    });
  }

  /** An annotation the server made (a click-to-box box, a painted region): shown, listed and undoable. */
  function showCreated(a: AnnotationData): void {
    const { item, shape } = itemFromApi(a);
    state.saved(item.localId, a);
    canvas.upsert(item, shape);
    undo.push({ type: "create", localId: item.localId });
    renderAnnList();
  }

  // ---- the image list -----------------------------------------------------------------------
  async function loadList(reset: boolean): Promise<void> {
    if (reset) {
      state.nextAfter = null;
      imageList.replaceChildren();
    }
    const page = await api.get<ImagePage>(`${base}/images`, { ...state.listFilter(), after: state.nextAfter, limit: 60 });
    state.nextAfter = page.next_after;
    moreBtn.style.display = state.nextAfter ? "" : "none";
    imageList.append(...page.items.map((img) => thumb(base, img, go)));
    if (reset && !page.items.length) {
      imageList.append(h("p", { class: "muted small pad" }, state.statusFilter ? "No images with this status." : "No images yet: upload some."));
    }
    markCurrent(imageList, state.detail?.id);
  }
  moreBtn.addEventListener("click", () => void loadList(false));

  // ---- one image ----------------------------------------------------------------------------
  async function openImage(id: number): Promise<void> {
    await saves.idle();
    let detail: ImageDetail;
    try {
      detail = await api.get<ImageDetail>(`${base}/images/${id}`, state.listFilter());
    } catch (err) {
      showError(err);
      return;
    }
    history.replaceState(null, "", `#/p/${slug}/annotate/${id}`);
    state.open(detail);
    clear(imageTitle, h("b", null, detail.file_name), h("span", { class: "muted small" }, ` ${detail.width}×${detail.height} · ${detail.status}`),
      detail.damaged ? h("span", { class: "badge warn", "data-testid": "damaged", title: detail.damaged }, "damaged file") : null);
    prevBtn.disabled = !detail.neighbours.previous;
    nextBtn.disabled = !detail.neighbours.next;
    const [parent] = await Promise.all([
      api.get<ParentRegion>(`${base}/images/${id}/parent-regions`).catch(() => null),
      canvas.load(imageSource(base, detail)),
    ]);
    parentRegions = parent?.regions ?? [];
    clear(parentNote, parent?.layer ? (parent.labelled ? `inside the regions of ${parent.layer}` : `${parent.layer} has not labelled this image yet: proposals and training skip it`) : "");
    showAnnotations(detail.annotations);
    markCurrent(imageList, detail.id);
    if (state.tool === "click") warmCandidates();
    if (can("annotate")) void api.post(`${base}/images/${id}/inspect`).catch(() => undefined);
  }

  function showAnnotations(anns: AnnotationData[]): void {
    if (!state.detail) return;
    state.showing(anns);
    canvas.setItems([...parentItems(parentRegions), ...anns.map(itemFromApi), ...regionItems(state.detail.regions)]);
    renderAnnList();
  }

  async function reload(): Promise<void> {
    if (state.detail) await openImage(state.detail.id);
  }

  function go(id: number | null | undefined): void {
    if (id) void openImage(id);
  }

  function renderAnnList(): void {
    renderAnnListView(annList, state, {
      item: (id) => canvas.item(id),
      selected: () => canvas.getSelected(),
      select: (id) => canvas.select(id),
      remove: (id) => void removeAnn(id),
    });
  }

  // ---- saving (serialised per annotation by the SaveQueue, so edits never overtake their create) ----
  function setSave(text: string, error = false): void {
    saveState.textContent = text;
    saveState.classList.toggle("error", error);
    if (!error && text === "Saved") saveState.classList.remove("error");
  }

  const stored = (localId: string) => state.stored(localId);

  function onCreate(localId: string, shape: Shape): void {
    if (!state.detail || !can("annotate")) return;
    if (state.tool === "region") {
      canvas.upsert({ localId, kind: "region", label: "training region", score: null, reviewState: null }, null);
      void saveRegions();
      return;
    }
    const cls = state.currentClass;
    if (!cls) {
      canvas.remove(localId);
      toast("Add a class first", "error");
      return;
    }
    canvas.upsert({ localId, kind: "annotation", label: cls.name, score: null, reviewState: null }, null);
    const imageId = state.detail.id;
    void enqueue(localId, async () => {
      const a = await api.post<AnnotationData>(`${base}/images/${imageId}/annotations`, createBody(cls.name, shape));
      known.set(localId, { id: a.id, version: a.version, label: a.label });
      undo.push({ type: "create", localId });
      renderAnnList();
    }).catch(() => canvas.remove(localId));
  }

  function onUpdate(localId: string, shape: Shape): void {
    if (canvas.item(localId)?.kind === "region") {
      void saveRegions();
      return;
    }
    const before = known.get(localId);
    const beforeShape = stored(localId);
    void enqueue(localId, async () => {
      const k = known.get(localId);
      if (!k) return;
      const a = await api.patch<AnnotationData>(`${base}/annotations/${k.id}`, { ...editBody(k.label, shape, stored(localId)), version: k.version });
      if (before) undo.push({ type: "update", localId, label: before.label, shape: beforeShape ? itemFromApi(beforeShape).shape : shape });
      state.saved(localId, a);
    });
  }

  async function relabel(localId: string, label: string): Promise<void> {
    const k = known.get(localId);
    const before = stored(localId);
    const shape = before ? itemFromApi(before).shape : canvas.shape(localId);
    if (!k || !shape || k.label === label) return;
    const item = canvas.item(localId);
    undo.push({ type: "update", localId, label: k.label, shape });
    await enqueue(localId, async () => {
      const cur = known.get(localId)!;
      // a relabel sends the label alone: the shape (every ring, the mask) stays as stored
      const a = await api.patch<AnnotationData>(`${base}/annotations/${cur.id}`, { label, version: cur.version });
      state.saved(localId, a);
      canvas.upsert({ ...(item as CanvasItem), label: a.label, reviewState: a.review_state }, null);
      renderAnnList();
    });
  }

  function onDelete(localId: string): void {
    void removeAnn(localId);
  }

  async function removeAnn(localId: string): Promise<void> {
    const item = canvas.item(localId);
    if (item?.kind === "region") {
      canvas.remove(localId);
      await saveRegions();
      return;
    }
    const k = known.get(localId);
    const kept = stored(localId);
    const shape = kept ? itemFromApi(kept).shape : canvas.shape(localId);  // undo restores every ring and the mask
    canvas.remove(localId);
    if (!k) return;
    known.delete(localId);
    renderAnnList();
    await enqueue(localId, async () => {
      await api.del(`${base}/annotations/${k.id}`, { version: k.version });
      if (shape) undo.push({ type: "delete", label: k.label, shape });
    });
  }

  async function saveRegions(): Promise<void> {
    if (!state.detail) return;
    const rings: number[][] = [];
    for (const id of allRegionIds()) {
      const s = canvas.shape(id);
      if (!s) continue;
      const [x1, y1, x2, y2] = s.bbox;
      rings.push(s.polygon ?? [x1, y1, x2, y1, x2, y2, x1, y2]);
    }
    const imageId = state.detail.id;
    await enqueue("regions", async () => {
      const img = await api.put<ImageDetail>(`${base}/images/${imageId}/regions`, { polygons: rings });
      if (state.detail?.id === imageId) state.detail.regions = img.regions;
      renderAnnList();
    });
  }

  function allRegionIds(): string[] {
    return canvas.idsOfKind("region");
  }

  async function undoLast(): Promise<void> {
    const op = undo.pop();
    if (!op || !state.detail) return;
    const imageId = state.detail.id;
    try {
      if (op.type === "create") {
        const k = known.get(op.localId);
        canvas.remove(op.localId);
        known.delete(op.localId);
        if (k) await enqueue(op.localId, () => api.del(`${base}/annotations/${k.id}`, { version: k.version }));
      } else if (op.type === "update") {
        const k = known.get(op.localId);
        if (!k) return;
        await enqueue(op.localId, async () => {
          const cur = known.get(op.localId)!;
          const a = await api.patch<AnnotationData>(`${base}/annotations/${cur.id}`, { ...editBody(op.label, op.shape, stored(op.localId)), version: cur.version });
          state.saved(op.localId, a);
          canvas.upsert({ ...(canvas.item(op.localId) as CanvasItem), label: a.label }, op.shape);
        });
      } else {
        const a = await enqueue("undo", () => api.post<AnnotationData>(`${base}/images/${imageId}/annotations`, createBody(op.label, op.shape)));
        const { item, shape } = itemFromApi(a);
        state.saved(item.localId, a);
        canvas.upsert(item, shape);
      }
      renderAnnList();
      toast("Undone");
    } catch {
      /* reported by enqueue */
    }
  }

  // ---- upload -------------------------------------------------------------------------------
  async function upload(files: FileList | null | undefined): Promise<void> {
    if (!files?.length) return;
    const form = new FormData();
    for (const f of Array.from(files)) form.append("files", f, f.name);
    setSave(`Uploading ${files.length}…`);
    try {
      const r = await api.post<UploadReport>(`${base}/images`, form);
      toast(`Added ${r.added.length} image${r.added.length === 1 ? "" : "s"}${r.duplicates.length ? `, ${r.duplicates.length} already there` : ""}`, r.added.length ? "ok" : "info");
      if (r.errors.length) toast(r.errors.slice(0, 3).join("; "), "error");
      await loadList(true);
      if (!state.detail && r.added.length) await openImage(r.added[0].id);
    } catch (err) {
      showError(err);
    } finally {
      setSave("Saved");
      uploadInput.value = "";
    }
  }

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    void upload(e.dataTransfer?.files);
  };
  const onDragOver = (e: DragEvent) => e.preventDefault();
  root.addEventListener("drop", onDrop);
  root.addEventListener("dragover", onDragOver);

  // ---- keyboard -----------------------------------------------------------------------------
  const unbindKeys = bindKeys([
    { keys: ["mod+z"], run: () => void undoLast() },
    { keys: ["1-9"], run: (e) => chooseClass(Number(e.key) - 1) },
    { keys: ["Delete", "Backspace"], when: () => canvas.getSelected().length > 0, run: () => canvas.getSelected().forEach((id) => void removeAnn(id)) },
    { keys: ["ArrowRight", "PageDown"], run: () => go(state.detail?.neighbours.next) },
    { keys: ["ArrowLeft", "PageUp"], run: () => go(state.detail?.neighbours.previous) },
    { keys: ["Escape"], run: () => canvas.cancel() },
    { keys: ["b", "r"], run: () => setTool("rectangle") },
    { keys: ["p"], run: () => setTool("polygon") },
    { keys: ["t"], run: () => setTool("region") },
    { keys: ["m"], run: () => setTool("click") },
    { keys: ["u"], when: () => paints, run: () => setTool("brush") },
    { keys: ["["], when: () => state.tool === "brush", run: () => (canvas.brushRadius = Math.max(2, canvas.brushRadius / 1.25)) },
    { keys: ["]"], when: () => state.tool === "brush", run: () => (canvas.brushRadius = Math.min(200, canvas.brushRadius * 1.25)) },
    { keys: ["+", "="], run: () => canvas.zoomBy(1.25) },
    { keys: ["-"], run: () => canvas.zoomBy(1 / 1.25) },
    { keys: ["0"], run: () => canvas.fit() },
  ]);
  const onUnload = (e: BeforeUnloadEvent) => {
    if (saves.pending) e.preventDefault();
  };
  window.addEventListener("beforeunload", onUnload);

  // ---- start --------------------------------------------------------------------------------
  renderClasses();
  setTool("rectangle");
  await loadList(true);
  const first = params.image ? Number(params.image) : Number((imageList.querySelector(".thumb") as HTMLElement | null)?.dataset.image ?? 0);
  if (first) await openImage(first);
  else canvas.element.replaceChildren(emptyState("No images yet", "Upload images (or drop them here) to start annotating.", can("images.upload") ? h("button", { class: "btn primary", onclick: () => uploadInput.click() }, "Upload images") : null));

  return () => {
    unbindKeys();
    window.removeEventListener("beforeunload", onUnload);
    canvas.destroy();
  };
}

/** A brush stroke (image pixels) as an uncompressed COCO RLE of the image's size (column-major runs from 0s). */
export function strokeRle(points: { x: number; y: number }[], radius: number, width: number, height: number): { size: [number, number]; counts: number[] } | null {
  const c = document.createElement("canvas");
  c.width = width;
  c.height = height;
  const g = c.getContext("2d");
  if (!g || !points.length) return null;
  g.strokeStyle = g.fillStyle = "#000";
  g.lineWidth = 2 * radius;
  g.lineCap = g.lineJoin = "round";
  g.beginPath();
  g.moveTo(points[0].x, points[0].y);
  for (const p of points.slice(1)) g.lineTo(p.x, p.y);
  g.stroke();
  g.beginPath();
  g.arc(points[0].x, points[0].y, radius, 0, 2 * Math.PI);
  g.fill();
  const px = g.getImageData(0, 0, width, height).data;
  const counts: number[] = [];
  let value = 0;
  let run = 0;
  let any = false;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const on = px[(y * width + x) * 4 + 3] >= 128 ? 1 : 0;
      if (on !== value) {
        counts.push(run);
        run = 0;
        value = on;
      }
      run++;
      any ||= on === 1;
    }
  }
  counts.push(run);
  return any ? { size: [height, width], counts } : null;
}
