// The job view (#/jobs/<id>): status, progress bar with iteration, losses and ETA, the previews as they are made,
// the result with a download link, cancel. Live through GET /v1/jobs/{id}/events when the API has it, else polling
// (js/live.js).

import { BlobUrls, request } from "./api.js";
import { $, clear, el, formatNumber, formatSeconds, isTerminal, progressText, setStatus, showError } from "./dom.js";
import { watch } from "./live.js";

let current = null; // {id, watcher, blobs, shown: Set, job, submittedAt}

function renderProgress(progress, status) {
  const bar = $("job-progress");
  const text = $("job-progress-text");
  if (status === "succeeded") {
    bar.value = 100;
  } else if (progress) {
    bar.value = progress.percent;
  }
  bar.textContent = `${bar.value}%`;
  if (progress) {
    text.textContent = progressText(progress);
    if (status === "succeeded") text.textContent = `Done: ${progress.iterations} iterations in `
                                                   + formatSeconds(progress.elapsed_s);
    if (progress.iteration > 0 && current.submittedAt !== null && !bar.dataset.firstProgressMs) {
      // Submit to first visible progress, as the page saw it (reported by tests/web).
      bar.dataset.firstProgressMs = String(Math.round(performance.now() - current.submittedAt));
    }
  } else if (status === "queued") {
    text.textContent = "Queued: waiting for a worker";
  } else if (status === "running") {
    text.textContent = "Running: preparing the networks and style targets";
  }
  const losses = progress && progress.losses ? Object.entries(progress.losses) : [];
  $("job-losses").replaceChildren(...losses.flatMap(([name, value]) => [el("dt", {}, `${name} loss`),
                                                                        el("dd", {}, formatNumber(value))]));
}

function iterationOf(url) {
  return Number(url.split("/").pop());
}

function showFigure(url, caption, alt) {
  const view = current;
  view.blobs.get(url).then((src) => {
    if (current !== view) return;
    const figure = $("job-result");
    // a later preview may have landed first; never replace the result or a newer preview by an older one
    const rank = url.endsWith("/result") ? Infinity : iterationOf(url);
    if (Number(figure.dataset.rank || -1) > rank) return;
    figure.dataset.rank = String(rank);
    $("job-result-img").src = src;
    $("job-result-img").alt = alt;
    $("job-result-caption").textContent = caption;
    figure.hidden = false;
  }, () => {});
}

function renderPreviews(previews) {
  const list = $("job-previews");
  const view = current;
  for (const url of previews) {
    if (view.shown.has(url)) continue;
    view.shown.add(url);
    const iteration = iterationOf(url);
    const item = el("li", { dataset: { iteration } }, `iteration ${iteration}`);
    const before = [...list.children].find((li) => Number(li.dataset.iteration) > iteration);
    list.insertBefore(item, before || null);
    view.blobs.get(url).then((src) => {
      if (current === view) item.prepend(el("img", { src, alt: `Preview at iteration ${iteration}` }));
    }, () => item.append(" (unavailable)"));
  }
  $("job-no-previews").hidden = previews.length > 0;
  if (previews.length && !(view.job && view.job.result)) {
    const last = previews[previews.length - 1];
    showFigure(last, `Preview at iteration ${iterationOf(last)}`, `Preview at iteration ${iterationOf(last)}`);
  }
}

function renderResult(job) {
  const link = $("job-download");
  if (!job.result) {
    link.hidden = true;
    return;
  }
  const view = current;
  showFigure(job.result.url, `Result, ${job.result.width} × ${job.result.height} px`, "The stylized result");
  view.blobs.get(job.result.url).then((src) => {
    if (current !== view) return;
    link.href = src;
    link.download = `${job.id}.png`;
    link.hidden = false;
  }, () => {});
}

function renderParams(job) {
  const rows = [["content", job.inputs.content_name], ["styles", (job.inputs.style_names || []).join(", ")],
                ["created", job.created_at], ["worker", job.worker], ["queue", job.queue]];
  for (const [name, value] of Object.entries(job.params || {})) {
    if (value !== null) rows.push([name, typeof value === "object" ? JSON.stringify(value) : value]);
  }
  if (job.metrics) rows.push(["metrics", JSON.stringify(job.metrics)]);
  $("job-params").replaceChildren(...rows.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, String(value))]));
}

function render(job) {
  current.job = job;
  setStatus($("job-status"), job.status);
  $("job-note").textContent = job.cancel_requested && !isTerminal(job.status) ? "cancel requested" : "";
  renderProgress(job.progress, job.status);
  renderPreviews(job.previews || []);
  renderResult(job);
  renderParams(job);
  const cancel = $("job-cancel");
  cancel.disabled = isTerminal(job.status) || job.cancel_requested;
  cancel.hidden = isTerminal(job.status);
  showError($("job-error"), job.error && job.status !== "succeeded" ? job.error : null, "The job did not succeed: ");
  const batch = $("job-batch");
  batch.hidden = !job.batch_id;
  if (job.batch_id) {
    batch.href = `#/batches/${job.batch_id}`;
    batch.textContent = "Its batch";
  }
}

function onEvent(message) {
  if (message.event === "progress" && message.data && current.job && !isTerminal(current.job.status)) {
    renderProgress(message.data, "running");
    return "handled"; // no need to re-read the job for a progress tick
  }
  return undefined; // status, preview, done: re-read the job
}

export function showJob(id, { submittedAt = null } = {}) {
  leaveJob();
  current = { id, blobs: new BlobUrls(), shown: new Set(), job: null, submittedAt };
  $("job-id").textContent = id;
  setStatus($("job-status"), "");
  $("job-note").textContent = "";
  const bar = $("job-progress");
  bar.value = 0;
  delete bar.dataset.firstProgressMs;
  $("job-progress-text").textContent = "Waiting for the worker";
  clear($("job-losses"));
  clear($("job-previews"));
  clear($("job-params"));
  $("job-no-previews").hidden = false;
  const figure = $("job-result");
  figure.hidden = true;
  delete figure.dataset.rank;
  $("job-download").hidden = true;
  showError($("job-error"), null);
  const path = `/v1/jobs/${encodeURIComponent(id)}`;
  current.watcher = watch({ path, eventsPath: `${path}/events`, render, onEvent,
                            onError: (err) => showError($("job-error"), err) });
}

export function leaveJob() {
  if (!current) return;
  current.watcher.stop();
  current.blobs.release();
  current = null;
}

export function initJob() {
  $("job-cancel").addEventListener("click", async () => {
    if (!current) return;
    const view = current;
    $("job-cancel").disabled = true;
    try {
      const job = await request(`/v1/jobs/${encodeURIComponent(view.id)}/cancel`, { method: "POST" });
      if (current === view) render(job);
      view.watcher.refresh();
    } catch (err) {
      showError($("job-error"), err);
      $("job-cancel").disabled = false;
    }
  });
}
