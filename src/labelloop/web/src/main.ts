import "./style.css";
import { api, ApiError, currentLayer, setLayer, setUnauthorizedHandler, type AuthUser, type LayerInfo } from "./api";
import { session, go, type Cleanup, type Page } from "./app";
import { h, clear, showError } from "./dom";
import { loginPage } from "./pages/login";
import { projectsPage } from "./pages/projects";
import { homePage } from "./pages/home";
import { annotatePage } from "./pages/annotate";
import { reviewPage } from "./pages/review";
import { trainPage } from "./pages/train";
import { modelsPage } from "./pages/models";
import { nextPage } from "./pages/next";

interface Route {
  pattern: RegExp;
  keys: string[];
  page: Page;
  tab?: string;
}

const routes: Route[] = [
  { pattern: /^\/login$/, keys: [], page: loginPage },
  { pattern: /^\/$/, keys: [], page: projectsPage },
  { pattern: /^\/p\/([^/]+)$/, keys: ["slug"], page: homePage, tab: "home" },
  { pattern: /^\/p\/([^/]+)\/annotate(?:\/(\d+))?$/, keys: ["slug", "image"], page: annotatePage, tab: "annotate" },
  { pattern: /^\/p\/([^/]+)\/review(?:\/(\d+))?$/, keys: ["slug", "image"], page: reviewPage, tab: "review" },
  { pattern: /^\/p\/([^/]+)\/train$/, keys: ["slug"], page: trainPage, tab: "train" },
  { pattern: /^\/p\/([^/]+)\/models(?:\/(\d+))?$/, keys: ["slug", "model"], page: modelsPage, tab: "models" },
  { pattern: /^\/p\/([^/]+)\/next$/, keys: ["slug"], page: nextPage, tab: "next" },
];

const TABS: [string, string][] = [
  ["home", "Overview"],
  ["annotate", "Annotate"],
  ["review", "Review"],
  ["train", "Train"],
  ["models", "Models"],
  ["next", "Next"],
];

const app = document.getElementById("app")!;
let cleanup: Cleanup | void;
let renderToken = 0;

function parseHash(): { path: string; query: URLSearchParams } {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, qs] = raw.split("?");
  return { path: path || "/", query: new URLSearchParams(qs ?? "") };
}

function topbar(slug: string | undefined, tab: string | undefined): HTMLElement {
  const user = session.user;
  return h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "#/" }, h("span", { class: "logo" }, "L"), "labelloop"),
    slug
      ? h(
          "nav",
          { class: "tabs" },
          h("a", { class: "crumb", href: "#/" }, "Projects"),
          h("span", { class: "crumb-sep" }, "/"),
          h("span", { class: "crumb project-name" }, slug),
          layerSwitcher(slug, tab),
          TABS.map(([key, label]) => h("a", { class: `tab ${key === tab ? "active" : ""}`, href: `#/p/${slug}${key === "home" ? "" : `/${key}`}`, "data-tab": key }, label)),
        )
      : h("nav", { class: "tabs" }, h("a", { class: "tab active", href: "#/" }, "Projects")),
    h(
      "div",
      { class: "user" },
      h("a", { href: "/api/docs", target: "_blank", class: "muted small" }, "API"),
      user ? h("span", { class: "who" }, user.username, h("span", { class: "role" }, user.role)) : null,
      user
        ? h("button", {
            class: "btn ghost small",
            onclick: async () => {
              await api.post("/api/auth/logout").catch(() => undefined);
              session.user = null;
              go("#/login");
            },
          }, "Log out")
        : null,
    ),
  );
}

/** A project of several layers (regions, objects inside them) shows which one the pages work on, and switches. */
function layerSwitcher(slug: string, tab: string | undefined): HTMLElement {
  const box = h("span", { class: "layer-switch" });
  const chosen = currentLayer(slug);
  api
    .get<LayerInfo[]>(`/api/projects/${encodeURIComponent(slug)}/layers`)
    .then((layers) => {
      if (layers.length < 2) return;
      const active = layers.find((l) => l.current) ?? layers[0];
      const select = h(
        "select",
        {
          class: "small",
          "data-testid": "layer-switcher",
          title: "the layer you work on: its classes, annotations and models",
          onchange: () => {
            setLayer(slug, select.value === layers[0].name ? "" : select.value);
            go(`#/p/${slug}${!tab || tab === "home" ? "" : `/${tab}`}`); // an image id is the layer's own: start afresh
          },
        },
        layers.map((l) => h("option", { value: l.name, selected: l.name === active.name }, `${l.name} (${l.kind}${l.parent ? ` in ${l.parent}` : ""})`)),
      );
      box.append(h("span", { class: "muted small" }, "layer"), select);
    })
    .catch((err) => {
      if (chosen && err instanceof ApiError && err.status === 404) {
        setLayer(slug, ""); // the layer chosen before is gone: back to the first
        go(location.hash);
      }
    });
  return box;
}

async function ensureUser(): Promise<boolean> {
  if (session.user) return true;
  try {
    session.user = (await api.get<AuthUser>("/api/auth/me")).user;
    return true;
  } catch {
    return false;
  }
}

async function render(): Promise<void> {
  const token = ++renderToken;
  if (typeof cleanup === "function") cleanup();
  cleanup = undefined;
  const { path, query } = parseHash();
  const route = routes.find((r) => r.pattern.test(path));
  if (!route) {
    go("#/");
    return;
  }
  if (route.page !== loginPage && !(await ensureUser())) {
    go(`#/login?next=${encodeURIComponent(path)}`);
    return;
  }
  if (token !== renderToken) return;
  const match = path.match(route.pattern)!;
  const params: Record<string, string> = {};
  route.keys.forEach((k, i) => {
    if (match[i + 1] !== undefined) params[k] = decodeURIComponent(match[i + 1]);
  });
  const chosen = query.get("layer");
  if (params.slug && chosen !== null) setLayer(params.slug, chosen); // a link to a layer's page (?layer=NAME)
  const main = h("main", { class: `page page-${route.tab ?? (route.page === loginPage ? "login" : "projects")}` });
  clear(app, route.page === loginPage ? null : topbar(params.slug, route.tab), main);
  try {
    cleanup = await route.page({ root: main, params, query });
  } catch (err) {
    showError(err);
  }
}

setUnauthorizedHandler(() => {
  session.user = null;
  if (!location.hash.startsWith("#/login")) go(`#/login?next=${encodeURIComponent(parseHash().path)}`);
});
window.addEventListener("hashchange", () => void render());
void render();
