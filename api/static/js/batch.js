// A batch (#/batches/<id>): overall state and progress, and each item's state, progress and job link, a page of
// items at a time (GET /v1/batches/{id}?offset=&limit=); cancel; the results ZIP.

import { blobUrl } from "./api.js";
import { $, el, formatSeconds, isTerminal, setStatus, showError } from "./dom.js";
import { watch } from "./live.js";
import { bindCancel } from "./pages.js";

const ITEMS_PAGE = 50;
let current = null; // {id, limit, watcher}

function itemRow(item) {
  const progress = item.progress && !isTerminal(item.status)
    ? el("progress", { max: 100, value: item.progress.percent, "aria-label": `Progress of ${item.name}` })
    : el("span", {}, item.status === "succeeded" ? "100%" : "");
  const detail = item.error ? el("span", { class: "note" }, ` ${item.error.message}`) : null;
  return el("tr", {}, el("td", {}, item.name), el("td", {}, el("span", { class: "status",
                                                                         dataset: { status: item.status } },
                                                               item.status), detail),
            el("td", {}, progress), el("td", {}, el("a", { href: `#/jobs/${item.job_id}` }, "open job")));
}

function render(batch) {
  setStatus($("batch-status"), batch.status);
  const counts = Object.entries(batch.counts || {}).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`);
  $("batch-counts").textContent = `${batch.total} items${counts.length ? `: ${counts.join(", ")}` : ""} · ${batch.mode}`
    + " mode";
  const percent = Math.round(100 * (batch.progress || 0));
  $("batch-progress").value = percent;
  $("batch-progress").textContent = `${percent}%`;
  $("batch-progress-text").textContent = `${percent}% done`
    + (batch.eta_s ? ` · about ${formatSeconds(batch.eta_s)} left` : "");
  $("batch-items").replaceChildren(...batch.items.map(itemRow));
  $("batch-more").hidden = batch.next_offset === null || batch.next_offset === undefined;
  $("batch-cancel").hidden = isTerminal(batch.status);
  $("batch-zip").disabled = !(batch.counts && batch.counts.succeeded);
}

function start(id, limit) {
  if (current) current.watcher.stop();
  const path = `/v1/batches/${encodeURIComponent(id)}?limit=${limit}`;
  current = { id, limit, watcher: null };
  current.watcher = watch({ path, eventsPath: `/v1/batches/${encodeURIComponent(id)}/events`, render,
                            onError: (err) => showError($("batch-error"), err) });
}

export function showBatch(id) {
  leaveBatch();
  $("batch-id").textContent = id;
  setStatus($("batch-status"), "");
  $("batch-items").replaceChildren();
  showError($("batch-error"), null);
  start(id, ITEMS_PAGE);
}

export function leaveBatch() {
  if (!current) return;
  current.watcher.stop();
  current = null;
}

export function initBatch() {
  $("batch-more").addEventListener("click", () => current && start(current.id, current.limit + ITEMS_PAGE));
  bindCancel("batch-cancel", () => current, "/v1/batches", render, "batch-error");
  $("batch-zip").addEventListener("click", async () => {
    if (!current) return;
    try {
      const url = await blobUrl(`/v1/batches/${encodeURIComponent(current.id)}/results.zip`);
      const link = el("a", { href: url, download: `batch-${current.id}.zip` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      showError($("batch-error"), err);
    }
  });
}
