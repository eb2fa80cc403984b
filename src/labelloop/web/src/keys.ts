// The keyboard: one window listener for the whole app. A page (or the canvas) binds its keys with
// `bindKeys` and gets back the function that unbinds them; keys typed into a form field never
// reach a binding. A binding's `hold` sees the key go down and up (Space to pan); `run` sees a press.

export interface KeyBinding {
  /** `e.key` values ("a", "Delete", "ArrowRight", "1-9" for a digit range) or `e.code` ("Space");
   * prefix "mod+" for Ctrl or Cmd, "shift+" for Shift */
  keys: string[];
  run?: (e: KeyboardEvent) => void;
  hold?: (down: boolean, e: KeyboardEvent) => void;
  /** bound only while this says so (e.g. only with a proposal in focus) */
  when?: () => boolean;
  /** stop the browser's own handling of the key (scrolling, tab focus); default true */
  preventDefault?: boolean;
}

const layers: KeyBinding[][] = [];
let listening = false;

function typing(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  return !!el && (el.tagName === "INPUT" || el.tagName === "SELECT" || el.tagName === "TEXTAREA" || el.isContentEditable);
}

function matches(spec: string, e: KeyboardEvent): boolean {
  let key = spec;
  let mod = false;
  let shift = false;
  for (;;) {  // modifiers are prefixes, so "+" itself is a key
    if (key.startsWith("mod+") && key.length > 4) [mod, key] = [true, key.slice(4)];
    else if (key.startsWith("shift+") && key.length > 6) [shift, key] = [true, key.slice(6)];
    else break;
  }
  if (mod !== (e.ctrlKey || e.metaKey)) return false;
  if (shift && !e.shiftKey) return false;
  if (key === "1-9") return /^[1-9]$/.test(e.key);
  if (key === e.code) return true;
  return mod ? e.key.toLowerCase() === key.toLowerCase() : e.key === key;
}

/** The binding a key event runs: the newest layer first, then the first match in it. */
export function findBinding(e: KeyboardEvent, stack: KeyBinding[][] = layers): KeyBinding | undefined {
  for (let i = stack.length - 1; i >= 0; i--) {
    const found = stack[i].find((b) => (!b.when || b.when()) && (e.type === "keyup" ? !!b.hold : true) && b.keys.some((k) => matches(k, e)));
    if (found) return found;
  }
  return undefined;
}

function dispatch(e: KeyboardEvent): void {
  if (typing(e.target)) return;
  const b = findBinding(e);
  if (!b) return;
  if (b.preventDefault !== false && (e.type === "keydown" || b.hold)) e.preventDefault();
  if (b.hold) b.hold(e.type === "keydown", e);
  else if (e.type === "keydown") b.run?.(e);
}

/** Bind keys until the returned function is called (a page's cleanup). */
export function bindKeys(bindings: KeyBinding[]): () => void {
  layers.push(bindings);
  if (!listening) {
    window.addEventListener("keydown", dispatch);
    window.addEventListener("keyup", dispatch);
    listening = true;
  }
  return () => {
    const i = layers.indexOf(bindings);
    if (i >= 0) layers.splice(i, 1);
  };
}
