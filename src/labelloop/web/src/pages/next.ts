// Next: suggested images with reasons and QA findings, each one click from the editor.
import { api, type Job } from "../api";
import { can, type Cleanup, type PageContext } from "../app";
import { h, clear, showError, ago } from "../dom";
import { jobCard, watchJob, type JobWatch } from "../jobs";

interface Latest<T> {
  job: Job | null;
  pending: Job | null;
  last: Job | null;
  suggestions?: T[];
  issues?: T[];
  note?: string | null;
}

export async function nextPage({ root, params }: PageContext): Promise<Cleanup> {
  const slug = params.slug;
  const base = `/api/projects/${slug}`;
  const watches: JobWatch[] = [];
  const suggestBox = h("section", { class: "card" });
  const qaBox = h("section", { class: "card" });
  root.append(h("div", { class: "page-head" }, h("h1", null, "What next"), h("p", { class: "muted" }, "Images worth annotating next, and annotations that look wrong.")), h("div", { class: "two-col" }, suggestBox, qaBox));

  async function section(box: HTMLElement, kind: "suggest" | "qa", title: string, key: "suggestions" | "issues", render: (item: any) => HTMLElement, params: Record<string, unknown>): Promise<void> {
    const data = await api.get<Latest<any>>(`${base}/${kind === "suggest" ? "suggestions" : "qa"}`);
    const items = data[key] ?? [];
    const run = h("button", { class: "btn small", onclick: () => void start() }, kind === "suggest" ? "Refresh suggestions" : "Run QA");
    const slot = h("div", { class: "job-slot" });
    const failed = data.last && data.last.status === "failed" ? h("div", { class: "form-error small" }, `Last run failed: ${data.last.error}`) : null;
    clear(
      box,
      h("div", { class: "card-head" }, h("h2", null, title), can("jobs.run") ? run : null),
      data.job ? h("div", { class: "muted small" }, `from job #${data.job.id}, ${ago(data.job.finished_at)}`) : null,
      kind === "suggest" && items.length && items[0].strategy ? h("div", { class: "muted small", "data-testid": "suggest-strategy" }, `strategy ${items[0].strategy} · scored by model ${items[0].model_id} (round ${items[0].model_round})`) : null,
      kind === "suggest" && items.length && data.note ? h("div", { class: "muted small", "data-testid": "suggest-note" }, data.note) : null,
      failed,
      slot,
      items.length ? h("div", { class: "next-list" }, items.map(render)) : h("p", { class: data.job ? "muted next-empty" : "muted" }, data.job ? "Nothing found." : "Not run yet for this project."),
    );
    if (data.pending) follow(data.pending);
    function follow(job: Job): void {
      const card = jobCard(slug, job);
      clear(slot, card.element);
      watches.push(watchJob(slug, job.id, { onJob: card.update, onEnd: (j) => { if (j?.status === "succeeded") void section(box, kind, title, key, render, params); } }));
    }
    async function start(): Promise<void> {
      try {
        follow(await api.post<Job>(`${base}/jobs`, { kind, params }));
      } catch (err) {
        showError(err);
      }
    }
  }

  const suggestion = (s: any) =>
    h(
      "a",
      { class: "next-item", href: `#/p/${slug}/annotate/${s.image_id}` },
      h("img", { src: `${base}/images/${s.image_id}/thumb?size=128`, loading: "lazy", alt: "" }),
      h("div", null, h("b", null, s.file_name ?? `image ${s.image_id}`), h("div", { class: "muted small" }, (s.reasons ?? []).join(" · ")), typeof s.score === "number" ? h("span", { class: "pill small" }, `score ${s.score.toFixed(2)}`) : null),
    );
  const issue = (q: any) =>
    h(
      "a",
      { class: "next-item", href: q.image_id ? `#/p/${slug}/annotate/${q.image_id}` : `#/p/${slug}/annotate` },
      q.image_id ? h("img", { src: `${base}/images/${q.image_id}/thumb?size=128`, loading: "lazy", alt: "" }) : null,
      h("div", null, h("b", null, q.kind ?? q.type ?? q.issue ?? "possible error"), h("div", { class: "small" }, q.message ?? q.reason ?? q.description ?? ""), h("div", { class: "muted small" }, [q.file_name, q.label, typeof q.score === "number" ? `score ${q.score.toFixed(2)}` : null].filter(Boolean).join(" · "))),
    );
  await Promise.all([section(suggestBox, "suggest", "Suggested images", "suggestions", suggestion, { n: 50 }), section(qaBox, "qa", "Possible label errors", "issues", issue, {})]);
  return () => {
    for (const w of watches) w.close();
  };
}
