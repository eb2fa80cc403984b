// DOM helpers: element builder, toasts, formatting.

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, any>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs | null = null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2).toLowerCase(), value);
      } else if (key === "class") {
        el.className = value;
      } else if (key === "style" && typeof value === "object") {
        Object.assign(el.style, value);
      } else if (key === "dataset") {
        Object.assign(el.dataset, value);
      } else if (key in el && typeof value !== "string") {
        (el as any)[key] = value;
      } else {
        el.setAttribute(key, value === true ? "" : String(value));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

export function toast(message: string, kind: "info" | "error" | "ok" = "info", hint?: string | null): void {
  let box = document.getElementById("toasts");
  if (!box) {
    box = h("div", { id: "toasts" });
    document.body.appendChild(box);
  }
  const item = h("div", { class: `toast toast-${kind}`, role: "status" }, h("div", null, message), hint ? h("div", { class: "hint" }, hint) : null);
  box.appendChild(item);
  setTimeout(() => item.classList.add("gone"), kind === "error" ? 6000 : 3000);
  setTimeout(() => item.remove(), kind === "error" ? 6500 : 3500);
}

export function showError(err: unknown): void {
  const e = err as { message?: string; hint?: string | null };
  toast(e?.message ?? String(err), "error", e?.hint ?? null);
}

export function pct(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined ? "–" : `${(v * 100).toFixed(digits)}%`;
}

/** a number with ``digits`` decimals; anything else (a missing metric, null, NaN) is "–" */
export function num(v: unknown, digits = 3): string {
  return typeof v !== "number" || Number.isNaN(v) ? "–" : v.toFixed(digits);
}

export function ago(iso: string | null | undefined): string {
  if (!iso) return "";
  const t = new Date(iso.endsWith("Z") ? iso : `${iso}Z`).getTime();
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function duration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** A colour from red (low) through amber to green (high) for a confidence in [0, 1]. */
export function confidenceColor(score: number | null | undefined): string {
  const s = Math.max(0, Math.min(1, score ?? 0));
  return hslToHex(s * 130, 0.85, 0.45);
}

function hslToHex(hue: number, sat: number, light: number): string {
  const a = sat * Math.min(light, 1 - light);
  const f = (n: number) => {
    const k = (n + hue / 30) % 12;
    const c = light - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(255 * c).toString(16).padStart(2, "0");
  };
  return `#${f(0)}${f(8)}${f(4)}`;
}

export function emptyState(title: string, text: string, ...actions: Child[]): HTMLElement {
  return h("div", { class: "empty" }, h("div", { class: "empty-title" }, title), h("p", null, text), actions);
}

export function spinner(): HTMLElement {
  return h("div", { class: "spinner", "aria-label": "loading" });
}
