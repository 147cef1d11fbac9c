// Videos (#/videos and #/videos/<id>), loaded only when the API serves /v1/videos (api/web.py OPTIONAL_KINDS):
// the tenant's videos with their posters, and one video's frame progress, the styled MP4 and cancel.

import { BlobUrls, request } from "./api.js";
import { $, el, formatTime, isTerminal, setStatus, showError } from "./dom.js";
import { watch } from "./live.js";
import { bindCancel, bindPager, pageQuery, showPage } from "./pages.js";

const PAGE_SIZE = 12;
let list = null; // {cursors, page, next, timer, blobs}
let detail = null; // {id, watcher, blobs}

function percentOf(video) {
  if (video.status === "succeeded") return 100;
  if (video.progress && typeof video.progress.percent === "number") return video.progress.percent;
  return video.frames ? Math.round((100 * video.frames_done) / video.frames) : 0;
}

function card(video) {
  const frame = el("div", { class: "frame" }, video.status);
  if (video.result && video.result.poster_url) {
    const mine = list;
    mine.blobs.get(video.result.poster_url).then((src) => {
      if (list === mine) frame.replaceChildren(el("img", { src, alt: "" }));
    }, () => {});
  }
  const names = [video.inputs.video_name, (video.inputs.style_names || []).join(" + ")].filter(Boolean).join(" in ");
  const meta = el("div", { class: "meta" }, el("strong", {}, video.status), el("span", { class: "names" }, names),
                  el("br"), el("span", {}, formatTime(video.created_at)));
  if (!isTerminal(video.status)) meta.append(el("progress", { max: 100, value: percentOf(video),
                                                               "aria-label": `Progress of video ${video.id}` }));
  return el("li", { class: "card" }, el("a", { href: `#/videos/${video.id}`,
                                               "aria-label": `Video ${video.id.slice(0, 8)}: ${video.status}` },
                                         frame, meta));
}

async function loadList() {
  if (!list) return;
  const mine = list;
  clearTimeout(mine.timer);
  const query = pageQuery(mine, PAGE_SIZE);
  try {
    const body = await request(`/v1/videos?${query}`);
    if (list !== mine) return;
    showPage("videos", mine, body.videos, body.next_cursor, card);
    if (body.videos.some((video) => !isTerminal(video.status))) mine.timer = setTimeout(loadList, 2000);
  } catch (err) {
    if (list === mine) showError($("app-error"), err, "The videos could not be loaded: ");
  }
}

function renderVideo(video) {
  setStatus($("video-status"), video.status);
  const frames = video.frames ? `${video.frames_done} of ${video.frames} frames` : "";
  $("video-note").textContent = video.cancel_requested && !isTerminal(video.status) ? "cancel requested" : "";
  const bar = $("video-progress");
  bar.value = percentOf(video);
  bar.textContent = `${bar.value}%`;
  $("video-progress-text").textContent = [frames, `${bar.value}%`].filter(Boolean).join(" · ");
  $("video-cancel").hidden = isTerminal(video.status);
  showError($("video-error"), video.error && video.status !== "succeeded" ? video.error : null);
  const mine = detail;
  if (video.result && !mine.shown) {
    mine.shown = true;
    mine.blobs.get(video.result.url).then((src) => {
      if (detail !== mine) return;
      const player = $("video-player");
      player.src = src;
      player.hidden = false;
      const link = $("video-download");
      link.href = src;
      link.download = `${video.id}.mp4`;
      link.hidden = false;
    }, (err) => showError($("video-error"), err));
  }
}

export function showVideos() {
  leaveVideos();
  list = { cursors: [null], page: 0, next: null, timer: null, blobs: new BlobUrls() };
  loadList();
}

export function showVideo(id) {
  leaveVideos();
  detail = { id, watcher: null, blobs: new BlobUrls(), shown: false };
  $("video-id").textContent = id;
  setStatus($("video-status"), "");
  $("video-player").hidden = true;
  $("video-player").removeAttribute("src");
  $("video-download").hidden = true;
  showError($("video-error"), null);
  const path = `/v1/videos/${encodeURIComponent(id)}`;
  detail.watcher = watch({ path, eventsPath: `${path}/events`, render: renderVideo,
                           onError: (err) => showError($("video-error"), err) });
}

export function leaveVideos() {
  if (list) {
    clearTimeout(list.timer);
    list.blobs.release();
  }
  list = null;
  if (detail) {
    detail.watcher.stop();
    detail.blobs.release();
  }
  detail = null;
}

export function initVideos() {
  bindPager("videos", () => list, loadList);
  bindCancel("video-cancel", () => detail, "/v1/videos", renderVideo, "video-error");
}
