// Style models (#/styles and #/styles/<id>): fast style networks trained by POST /v1/styles; their training
// progress, previews and "use in the studio" (the studio's style_model select).

import { BlobUrls, request } from "./api.js";
import { $, el, formatTime, isTerminal, progressText, setStatus, showError } from "./dom.js";
import { watch } from "./live.js";
import { bindCancel, bindPager, pageQuery, showPage } from "./pages.js";

const PAGE_SIZE = 20;
let list = null; // {cursors, page, next, timer}
let detail = null; // {id, watcher, blobs, shown}

function names(model) {
  return (model.inputs.style_names || []).join(" + ") || "—";
}

function row(model) {
  const progress = model.progress && !isTerminal(model.status)
    ? el("progress", { max: 100, value: model.progress.percent, "aria-label": `Training progress of ${model.id}` })
    : el("span", {}, model.status === "succeeded" ? "trained" : "");
  return el("tr", {}, el("td", {}, el("a", { href: `#/styles/${model.id}` }, el("code", {}, model.id.slice(0, 12))),
                         el("br"), el("span", { class: "note" }, formatTime(model.created_at))),
            el("td", {}, names(model)),
            el("td", {}, el("span", { class: "status", dataset: { status: model.status } }, model.status)),
            el("td", {}, progress));
}

async function loadList() {
  if (!list) return;
  const mine = list;
  clearTimeout(mine.timer);
  const query = pageQuery(mine, PAGE_SIZE);
  try {
    const body = await request(`/v1/styles?${query}`);
    if (list !== mine) return;
    showError($("app-error"), null);
    showPage("styles", mine, body.styles, body.next_cursor, row);
    if (body.styles.some((model) => !isTerminal(model.status))) mine.timer = setTimeout(loadList, 2000);
  } catch (err) {
    if (list === mine) showError($("app-error"), err, "The style models could not be loaded: ");
  }
}

export function showStyles() {
  leaveStyles();
  list = { cursors: [null], page: 0, next: null, timer: null };
  loadList();
}

function renderModel(model) {
  setStatus($("style-status"), model.status);
  $("style-note").textContent = `${names(model)}${model.cancel_requested && !isTerminal(model.status)
    ? " · cancel requested" : ""}`;
  const bar = $("style-progress");
  bar.value = model.status === "succeeded" ? 100 : (model.progress ? model.progress.percent : 0);
  bar.textContent = `${bar.value}%`;
  $("style-progress-text").textContent = model.progress ? progressText(model.progress, "Step") : "";
  $("style-cancel").hidden = isTerminal(model.status);
  const use = $("style-use");
  use.hidden = model.status !== "succeeded";
  use.href = `#/?style_model=${model.id}`;
  showError($("style-error"), model.error && model.status !== "succeeded" ? model.error : null);
  const mine = detail;
  for (const url of model.previews || []) {
    if (mine.shown.has(url)) continue;
    mine.shown.add(url);
    const step = url.split("/").pop();
    const item = el("li", {}, `step ${step}`);
    $("style-previews").append(item);
    mine.blobs.get(url).then((src) => {
      if (detail === mine) item.prepend(el("img", { src, alt: `Training preview at step ${step}` }));
    }, () => {});
  }
}

export function showStyle(id) {
  leaveStyles();
  detail = { id, watcher: null, blobs: new BlobUrls(), shown: new Set() };
  $("style-id").textContent = id;
  setStatus($("style-status"), "");
  $("style-previews").replaceChildren();
  showError($("style-error"), null);
  const path = `/v1/styles/${encodeURIComponent(id)}`;
  detail.watcher = watch({ path, eventsPath: `${path}/events`, render: renderModel,
                           onError: (err) => showError($("style-error"), err) });
}

export function leaveStyles() {
  if (list) clearTimeout(list.timer);
  list = null;
  if (detail) {
    detail.watcher.stop();
    detail.blobs.release();
  }
  detail = null;
}

export function initStyles() {
  bindPager("styles", () => list, loadList);
  bindCancel("style-cancel", () => detail, "/v1/styles", renderModel, "style-error");
}
