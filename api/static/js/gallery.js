// The gallery (#/gallery): the tenant's jobs from GET /v1/jobs, newest first, a page at a time (the API's cursor
// pagination: `next_cursor` names the last job seen, so pages stay stable while new jobs arrive).

import { BlobUrls, request } from "./api.js";
import { $, el, formatTime, isTerminal, showError } from "./dom.js";
import { bindPager, pageQuery, showPage } from "./pages.js";

const PAGE_SIZE = 12;
const REFRESH_MS = 2000;
let view = null; // {cursors: [null, ...], page, blobs, timer, next}

function thumbnailPath(job) {
  if (job.result) return job.result.url;
  return job.previews && job.previews.length ? job.previews[job.previews.length - 1] : null;
}

function card(job) {
  const frame = el("div", { class: "frame" }, job.status === "queued" ? "queued" : job.status);
  const path = thumbnailPath(job);
  if (path) {
    const mine = view;
    mine.blobs.get(path).then((src) => {
      if (view === mine) frame.replaceChildren(el("img", { src, alt: "" }));
    }, () => {});
  }
  const names = [job.inputs.content_name, (job.inputs.style_names || []).join(" + ")].filter(Boolean).join(" in ");
  const meta = el("div", { class: "meta" }, el("strong", {}, job.status), el("span", { class: "names" }, names),
                  el("br"), el("span", {}, formatTime(job.created_at)));
  if (!isTerminal(job.status) && job.progress) {
    meta.append(el("progress", { max: 100, value: job.progress.percent, "aria-label": `Progress of job ${job.id}` }));
  }
  if (job.batch_id) meta.append(el("span", { class: "note" }, " · in a batch"));
  const label = `Job ${job.id.slice(0, 8)}: ${job.status}${names ? `, ${names}` : ""}`;
  return el("li", { class: "card" }, el("a", { href: `#/jobs/${job.id}`, "aria-label": label }, frame, meta));
}

async function load() {
  if (!view) return;
  const mine = view;
  clearTimeout(mine.timer);
  const query = pageQuery(mine, PAGE_SIZE);
  try {
    const body = await request(`/v1/jobs?${query}`);
    if (view !== mine) return;
    showError($("app-error"), null);
    showPage("gallery", mine, body.jobs, body.next_cursor, card);
    $("gallery-page").textContent = `page ${mine.page + 1}`;
    if (body.jobs.some((job) => !isTerminal(job.status))) mine.timer = setTimeout(load, REFRESH_MS);
  } catch (err) {
    if (view === mine) showError($("app-error"), err, "The gallery could not be loaded: ");
  }
}

export function showGallery() {
  leaveGallery();
  view = { cursors: [null], page: 0, blobs: new BlobUrls(), timer: null, next: null };
  load();
}

export function leaveGallery() {
  if (!view) return;
  clearTimeout(view.timer);
  view.blobs.release();
  view = null;
}

export function initGallery({ openBatch }) {
  bindPager("gallery", () => view, load);
  $("batch-open").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("batch-open-id");
    if (!input.checkValidity()) {
      input.setAttribute("aria-invalid", "true");
      input.reportValidity();
      return;
    }
    input.removeAttribute("aria-invalid");
    openBatch(input.value.trim());
  });
}
