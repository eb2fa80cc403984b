// The Annotate page's views: the class picker, the image list's thumbnails and the list of what is
// on the image. Each renders from the state and reports what the user did through callbacks.
import type { ImageItem } from "../api";
import type { CanvasItem } from "../canvas";
import { h, clear, confidenceColor } from "../dom";
import type { AnnotateState } from "./annotate-state";

export function renderClasses(box: HTMLElement, state: AnnotateState, choose: (i: number) => void): void {
  clear(
    box,
    state.classes.length
      ? state.classes.map((c, i) =>
          h(
            "button",
            { class: `class-item ${i === state.current ? "active" : ""}`, onclick: () => choose(i), "data-class": c.name },
            h("i", { class: "swatch", style: { background: c.color } }),
            h("span", { class: "class-name" }, c.name),
            i < 9 ? h("kbd", null, String(i + 1)) : null,
          ),
        )
      : h("p", { class: "muted small" }, "No classes yet: add one below."),
  );
}

export function addClassForm(add: (name: string) => Promise<boolean>): HTMLElement {
  const input = h("input", { placeholder: "new class", class: "small" });
  return h(
    "form",
    {
      class: "add-class",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const name = input.value.trim();
        if (name && (await add(name))) input.value = "";
      },
    },
    input,
    h("button", { class: "btn small", type: "submit" }, "Add"),
  );
}

export function thumb(base: string, img: ImageItem, open: (id: number) => void): HTMLElement {
  const count = (img.annotations ?? 0) + (img.proposals ?? 0);
  return h(
    "button",
    { class: "thumb", "data-image": String(img.id), title: img.file_name, onclick: () => open(img.id) },
    h("img", { src: `${base}/images/${img.id}/thumb?size=128`, loading: "lazy", alt: "" }),
    h("span", { class: `dot status-${img.status}` }),
    h("span", { class: "thumb-name" }, img.file_name),
    img.damaged ? h("span", { class: "thumb-damaged", title: img.damaged }, "⚠") : null,
    count ? h("span", { class: "thumb-count" }, String(count)) : null,
  );
}

export function markCurrent(list: HTMLElement, imageId: number | undefined): void {
  for (const el of list.querySelectorAll<HTMLElement>(".thumb")) el.classList.toggle("current", el.dataset.image === String(imageId));
  list.querySelector(".thumb.current")?.scrollIntoView({ block: "nearest" });
}

export interface AnnListActions {
  item: (localId: string) => CanvasItem | undefined;
  selected: () => string[];
  select: (localId: string) => void;
  remove: (localId: string) => void;
}

export function renderAnnList(box: HTMLElement, state: AnnotateState, act: AnnListActions): void {
  const detail = state.detail;
  if (!detail) return;
  const selected = new Set(act.selected());
  const rows = [...state.known.entries()].map(([localId, k]) => {
    const item = act.item(localId);
    return h(
      "div",
      { class: `ann-row ${selected.has(localId) ? "selected" : ""}`, onclick: () => act.select(localId) },
      h("i", { class: "swatch", style: { background: item?.reviewState === "proposed" ? confidenceColor(item.score) : state.color(k.label) } }),
      h("span", null, k.label),
      item?.score != null ? h("span", { class: "muted small" }, ` ${(item.score * 100).toFixed(0)}%`) : null,
      item?.reviewState ? h("span", { class: "pill small" }, item.reviewState) : null,
      h("button", { class: "icon-btn", title: "delete", onclick: (e: Event) => { e.stopPropagation(); act.remove(localId); } }, "×"),
    );
  });
  const regions = detail.regions.length ? h("div", { class: "muted small" }, `${detail.regions.length} training region(s): only inside them is the annotation complete`) : null;
  clear(box, rows.length ? rows : h("p", { class: "muted small" }, "Nothing yet: drag on the image to draw."), regions);
}
