// Train: pick a base model (with the catalog's guidance), optional arguments, Start; live loss
// and mAP charts over server-sent events; the flipbook of predictions epoch after epoch; Cancel.
import { api, ApiError, type BaseModel, type ClassInfo, type ExecutorInfo, type Flipbook, type Job, type JobEvent, type ModelRecord, type ProjectSummary } from "../api";
import { can, type Cleanup, type PageContext } from "../app";
import { LineChart } from "../charts";
import { h, clear, showError, spinner, num } from "../dom";
import { FlipbookPlayer } from "../flipbook";
import { jobCard, watchJob, type JobWatch } from "../jobs";

export async function trainPage({ root, params }: PageContext): Promise<Cleanup> {
  const slug = params.slug;
  const base = `/api/projects/${slug}`;
  const [project, classes] = await Promise.all([api.get<ProjectSummary>(base), api.get<ClassInfo[]>(`${base}/classes`)]);
  const color = (label: string) => classes.find((c) => c.name === label)?.color ?? "#16a34a";
  const [catalog, models, executor] = await Promise.all([api.get<BaseModel[]>("/api/base-models", { task: project.task }), api.get<ModelRecord[]>(`${base}/models`), api.get<ExecutorInfo>("/api/executor")]);

  let watch: JobWatch | null = null;
  let player: FlipbookPlayer | null = null;
  let modelId: number | null = null;
  const lossChart = new LineChart("Training loss", "step", ["loss"]);
  const metricChart = new LineChart("Validation", "epoch", ["map50"]);
  const jobSlot = h("div", { class: "job-slot" });
  const flipSlot = h("div", { class: "flip-slot" });
  const summary = h("div", { class: "muted small" });

  // ---- the form -----------------------------------------------------------------------------
  let chosen = (catalog.find((m) => m.default) ?? catalog[0])?.name ?? "";
  const cards = h("div", { class: "model-cards" });
  const renderCards = () =>
    clear(
      cards,
      catalog.map((m) =>
        h(
          "label",
          { class: `model-card ${m.name === chosen ? "chosen" : ""}` },
          h("input", { type: "radio", name: "base", value: m.name, checked: m.name === chosen, onchange: () => { chosen = m.name; renderCards(); } }),
          h("div", null, h("b", null, m.name), m.default ? h("span", { class: "pill small" }, "default") : null, h("div", { class: "small" }, m.summary), h("div", { class: "muted small" }, m.guidance)),
        ),
      ),
    );
  renderCards();
  const ready = models.filter((m) => m.status === "ready").reverse();
  const fromSel = h("select", null, h("option", { value: "" }, "ImageNet backbone (a fresh model)"), ready.map((m, i) => h("option", { value: String(m.id), selected: i === 0 }, `continue from ${m.name} (#${m.id}, mAP@.5 ${num(m.metrics?.map50)})`)));
  const args = h("input", { placeholder: "epochs=30;batch_size=8", "data-testid": "train-args" });
  // the machine: what jobs run on, and how many parallel copies of the model one training may use
  const cpus = executor.resources.CPU ?? 1;
  const gpus = executor.resources.GPU ?? 0;
  const clones = h("select", { "data-testid": "num-clones" }, Array.from({ length: executor.max_clones }, (_, i) => h("option", { value: String(i + 1) }, i ? `${i + 1} copies${gpus ? ` (${i + 1} GPUs)` : ""}` : "1 (no data parallelism)")));
  const machine = h("div", { class: "muted small", "data-testid": "executor" }, `Runs on the ${executor.name}: ${cpus} CPU${cpus === 1 ? "" : "s"}, ${gpus ? `${gpus} GPU${gpus === 1 ? "" : "s"}` : "no GPU"}`);
  const withClones = (text: string): string => {
    const n = Number(clones.value);
    if (n <= 1 || /(^|;)\s*-*num_clones\s*=/.test(text)) return text;  // the arguments' own num_clones wins
    return text ? `${text};num_clones=${n}` : `num_clones=${n}`;
  };
  const start = h("button", { class: "btn primary", type: "submit", "data-testid": "start-training" }, "Start training");
  const form = h(
    "form",
    {
      class: "card train-form",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        start.disabled = true;
        try {
          const job = await api.post<Job>(`${base}/jobs`, { kind: "train", params: { base: chosen || null, args: withClones(args.value.trim()), from_model: fromSel.value ? Number(fromSel.value) : null } });
          follow(job, true);
        } catch (err) {
          showError(err);
          start.disabled = false;
        }
      },
    },
    h("h2", null, "Train a model"),
    h("div", { class: "field-label" }, "Base model"),
    cards,
    h("label", null, "Start from", fromSel),
    h("label", null, "Arguments (optional)", args, h("span", { class: "muted small" }, "key=value pairs separated by ';' — leave empty for sensible defaults")),
    h("label", null, "Parallel copies (num_clones)", clones, machine),
    can("jobs.run") ? start : h("p", { class: "muted" }, "Your role may not start training."),
  );

  root.append(h("div", { class: "train-layout" }, form, h("div", { class: "train-live" }, h("section", { class: "card" }, h("h2", null, "Progress"), jobSlot, summary, h("div", { class: "charts" }, lossChart.element, metricChart.element)), h("section", { class: "card" }, h("h2", null, "Flipbook"), flipSlot))));

  // ---- following a run ----------------------------------------------------------------------
  function follow(job: Job, live: boolean): void {
    watch?.close();
    const card = jobCard(slug, job);
    clear(jobSlot, card.element);
    const steps: number[] = [];
    const losses: number[] = [];
    const epochs: number[] = [];
    const metrics = new Map<string, (number | null)[]>();
    let stepsPerEpoch = 1;
    const onEvent = (ev: JobEvent) => {
      if (ev.model_id && ev.model_id !== modelId) {
        modelId = ev.model_id;
      }
      if (ev.type === "start") stepsPerEpoch = Math.max(1, ev.steps_per_epoch ?? 1);
      if (ev.type === "step" && typeof ev.loss === "number") {
        steps.push((ev.epoch - 1) * stepsPerEpoch + ev.step);
        losses.push(ev.loss);
        lossChart.setData(steps, [losses]);
      }
      if (ev.type === "epoch") {
        epochs.push(ev.epoch);
        for (const [k, v] of Object.entries(ev.metrics ?? {})) {
          if (typeof v !== "number" || !/map|iou|ap/i.test(k)) continue;
          if (!metrics.has(k)) metrics.set(k, epochs.slice(0, -1).map(() => null));
        }
        for (const [k, arr] of metrics) arr.push(typeof ev.metrics?.[k] === "number" ? ev.metrics[k] : null);
        const names = [...metrics.keys()].slice(0, 4);
        if (names.length) metricChart.setData(epochs, names.map((n) => metrics.get(n)!), names);
        summary.textContent = `epoch ${ev.epoch}: ${names.map((n) => `${n} ${num(ev.metrics?.[n])}`).join(" · ")}`;
        void refreshFlipbook();
      }
      if (ev.type === "end") void refreshFlipbook();
    };
    if (live || job.status === "queued" || job.status === "running") {
      watch = watchJob(slug, job.id, {
        onJob: card.update,
        onEvent,
        onEnd: (j) => {
          start.disabled = false;
          if (j) card.update(j);
          void refreshFlipbook();
        },
      });
    } else {
      void api.get<Job>(`${base}/jobs/${job.id}`, { events: true }).then((j) => {
        ((j.events ?? []) as JobEvent[]).forEach(onEvent);
        modelId = modelId ?? (j.output?.model_id as number | undefined) ?? null;
        void refreshFlipbook();
      });
    }
  }

  async function refreshFlipbook(): Promise<void> {
    if (!modelId) return;
    try {
      const data = await api.get<Flipbook>(`${base}/models/${modelId}/flipbook`);
      if (!player) {
        player = new FlipbookPlayer(slug, data, color);
        clear(flipSlot, player.element);
      } else player.update(data);
    } catch (err) {
      // a run with no evaluated epoch has no frames yet (404): the next epoch event loads them
      if (!(err instanceof ApiError && err.status === 404)) clear(flipSlot, h("p", { class: "error" }, `The flipbook could not be loaded: ${(err as Error).message}`));
    }
  }

  clear(flipSlot, h("p", { class: "muted" }, "Start a training run to see the model's predictions on fixed validation images, epoch after epoch."));
  const last = (await api.get<Job[]>(`${base}/jobs`, { kind: "train", limit: 1 }))[0];
  if (last) {
    if (last.status === "queued" || last.status === "running") start.disabled = true;
    follow(last, false);
  } else {
    clear(jobSlot, h("p", { class: "muted" }, "No training run yet."));
  }
  void spinner;
  return () => {
    watch?.close();
    player?.stop();
    lossChart.destroy();
    metricChart.destroy();
  };
}
