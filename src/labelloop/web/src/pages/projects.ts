import { api, type ProjectSummary } from "../api";
import { can, go, type PageContext } from "../app";
import { h, clear, showError, emptyState, ago, spinner } from "../dom";

const TASKS: [string, string][] = [
  ["detect", "Object detection (boxes)"],
  ["segment", "Instance segmentation (polygons)"],
  ["regions", "Semantic regions"],
];

export async function projectsPage({ root }: PageContext): Promise<void> {
  const list = h("div", { class: "project-grid" }, spinner());
  const name = h("input", { name: "name", required: true, placeholder: "e.g. Raccoons", maxlength: 200 });
  const labels = h("input", { name: "labels", placeholder: "raccoon, squirrel" });
  const task = h("select", { name: "task" }, TASKS.map(([v, t]) => h("option", { value: v }, t)));
  const form = h(
    "form",
    {
      class: "card create-card",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        try {
          const p = await api.post<ProjectSummary>("/api/projects", {
            name: name.value.trim(),
            task: task.value,
            labels: labels.value.split(",").map((s) => s.trim()).filter(Boolean),
          });
          go(`#/p/${p.slug}/annotate`);
        } catch (err) {
          showError(err);
        }
      },
    },
    h("h2", null, "New project"),
    h("label", null, "Name", name),
    h("label", null, "Task", task),
    h("label", null, "Classes", labels, h("span", { class: "muted small" }, "comma-separated; you can add more later")),
    h("button", { class: "btn primary", type: "submit" }, "Create project"),
  );
  root.append(
    h("div", { class: "page-head" }, h("h1", null, "Projects"), h("p", { class: "muted" }, "Annotate ~20 objects per class, train, let the model pre-annotate the rest, review, repeat.")),
    h("div", { class: "projects-layout" }, list, can("project.create") ? form : null),
  );
  try {
    const projects = await api.get<ProjectSummary[]>("/api/projects");
    if (!projects.length) {
      clear(list, emptyState("No projects yet", can("project.create") ? "Create your first project with the form." : "Ask an administrator to create a project."));
      return;
    }
    clear(
      list,
      projects.map((p) =>
        h(
          "a",
          { class: "card project-card", href: `#/p/${p.slug}` },
          h("div", { class: "project-card-head" }, h("h3", null, p.name), h("span", { class: "pill" }, p.task)),
          p.error
            ? h("p", { class: "form-error" }, p.error)
            : h(
                "div",
                { class: "project-stats" },
                h("div", null, h("b", null, (p.images ?? 0).toLocaleString()), h("span", null, "images")),
                h("div", null, h("b", null, (p.proposals ?? 0).toLocaleString()), h("span", null, "proposals")),
                h("div", null, h("b", null, p.models), h("span", null, "models")),
              ),
          h("div", { class: "muted small" }, `/${p.slug} · created ${ago(p.created_at)}`),
        ),
      ),
    );
  } catch (err) {
    clear(list);
    showError(err);
  }
}
