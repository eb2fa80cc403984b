// Following a job: server-sent events (EventSource resumes by itself with Last-Event-ID).
import { api, type Job, type JobEvent } from "./api";
import { h, clear, showError, pct } from "./dom";

export interface JobWatch {
  close(): void;
}

export function watchJob(slug: string, jobId: number, handlers: { onJob?: (job: Job) => void; onEvent?: (ev: JobEvent) => void; onEnd?: (job: Job | null) => void }): JobWatch {
  let last: Job | null = null;
  const source = new EventSource(`/api/projects/${slug}/jobs/${jobId}/events`);
  source.addEventListener("job", (e) => {
    last = JSON.parse((e as MessageEvent).data) as Job;
    handlers.onJob?.(last);
  });
  source.addEventListener("progress", (e) => handlers.onEvent?.(JSON.parse((e as MessageEvent).data) as JobEvent));
  source.addEventListener("end", () => {
    source.close();
    handlers.onEnd?.(last);
  });
  return { close: () => source.close() };
}

/** A compact progress card for a job: bar, message, error, cancel button. */
export function jobCard(slug: string, job: Job, onCancelled?: () => void): { element: HTMLElement; update: (job: Job) => void } {
  const bar = h("div", { class: "progress-fill" });
  const msg = h("div", { class: "job-msg", "data-testid": "job-message" });
  const status = h("span", { class: "status" });
  const cancel = h(
    "button",
    {
      class: "btn danger small",
      onclick: async () => {
        cancel.disabled = true;
        try {
          update(await api.post<Job>(`/api/projects/${slug}/jobs/${job.id}/cancel`));
          onCancelled?.();
        } catch (err) {
          showError(err);
        }
      },
    },
    "Cancel",
  );
  const err = h("div", { class: "form-error small" });
  const warn = h("div", { class: "job-warning small", "data-testid": "job-warning" });
  const element = h(
    "div",
    { class: "job-card", "data-testid": "job-card" },
    h("div", { class: "job-head" }, h("b", null, `${job.kind} #${job.id}`), status, h("span", { class: "spacer" }), cancel),
    h("div", { class: "progress" }, bar),
    msg,
    warn,
    err,
  );
  function update(j: Job): void {
    bar.style.width = pct(j.progress, 0).replace("–", "0%");
    status.className = `status status-${j.status}`;
    status.textContent = j.status + (j.status === "running" ? ` ${Math.round(j.progress * 100)}%` : "");
    clear(msg, j.message);
    clear(err, j.error ?? "");
    clear(warn, skippedNote(j));
    cancel.style.display = j.status === "queued" || j.status === "running" ? "" : "none";
    cancel.disabled = j.cancel_requested;
  }
  update(job);
  return { element, update };
}

interface SkippedImage {
  image_id: number;
  file_name: string;
  reason: string;
}

/** A finished job's unreadable images (skipped, the rest processed), the first few by name. */
function skippedNote(j: Job): string {
  const skipped: SkippedImage[] = Array.isArray(j.output?.skipped) ? j.output.skipped : [];
  if (!skipped.length) return "";
  const shown = skipped.slice(0, 5).map((s) => `${s.file_name} (image ${s.image_id}: ${s.reason})`);
  const more = skipped.length > 5 ? `; and ${skipped.length - 5} more` : "";
  return `⚠ ${skipped.length} image(s) could not be read and were skipped: ${shown.join("; ")}${more}. Run labelloop doctor to list and fix them.`;
}
