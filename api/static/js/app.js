// The studio's entry point: the API key form, and the hash router that shows one <section data-view> at a time.
// Routes: #/ (studio), #/jobs/<id>, #/gallery, #/batches/<id>, #/styles, #/styles/<id>, and #/videos,
// #/videos/<id> when the API has video routes (the server leaves the section out otherwise).

import { apiKey, onUnauthorized, setApiKey } from "./api.js";
import { $ } from "./dom.js";
import { initBatch, leaveBatch, showBatch } from "./batch.js";
import { initGallery, leaveGallery, showGallery } from "./gallery.js";
import { initJob, leaveJob, showJob } from "./job.js";
import { initStudio, showStudio } from "./studio.js";
import { initStyles, leaveStyles, showStyle, showStyles } from "./styles.js";

const kinds = (document.body.dataset.kinds || "").split(",").filter(Boolean);
const videos = kinds.includes("videos") ? await import("./videos.js") : null;
const ID = "([0-9a-zA-Z_-]{1,64})";

let pendingSubmit = null; // {id, submittedAt}: the job the studio just created, for the first-progress timing

const ROUTES = [
  [/^\/?$/, "studio", (m, query) => showStudio(query)],
  [new RegExp(`^/jobs/${ID}$`), "job", (m) => {
    const timing = pendingSubmit && pendingSubmit.id === m[1] ? pendingSubmit.submittedAt : null;
    pendingSubmit = null;
    showJob(m[1], { submittedAt: timing });
  }],
  [/^\/gallery$/, "gallery", () => showGallery()],
  [new RegExp(`^/batches/${ID}$`), "batch", (m) => showBatch(m[1])],
  [/^\/styles$/, "styles", () => showStyles()],
  [new RegExp(`^/styles/${ID}$`), "style", (m) => showStyle(m[1])],
];
if (videos) {
  ROUTES.push([/^\/videos$/, "videos", () => videos.showVideos()],
              [new RegExp(`^/videos/${ID}$`), "video", (m) => videos.showVideo(m[1])]);
}
const NAV_OF_VIEW = { studio: "studio", job: "gallery", gallery: "gallery", batch: "gallery", styles: "styles",
                      style: "styles", videos: "videos", video: "videos" };

function leaveAll() {
  leaveJob();
  leaveGallery();
  leaveBatch();
  leaveStyles();
  if (videos) videos.leaveVideos();
}

let firstRoute = true;

function route() {
  const hash = location.hash || "#/";
  if (!hash.startsWith("#/")) return; // an in-page anchor such as the skip link's #main, not a route
  const [path, search] = hash.slice(1).split("?");
  const query = new URLSearchParams(search || "");
  const match = ROUTES.map(([pattern, view, show]) => [pattern.exec(path), view, show]).find(([m]) => m);
  const [m, view, show] = match || [[], "studio", () => showStudio(query)];
  leaveAll();
  for (const section of document.querySelectorAll("main > section[data-view]")) {
    section.hidden = section.dataset.view !== view;
  }
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === NAV_OF_VIEW[view]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const heading = document.querySelector(`section[data-view="${view}"] h1`);
  document.title = `${heading ? heading.textContent.replace(/\s+/g, " ").trim() : "Atelier"} · Atelier studio`;
  if (!firstRoute && heading) {
    // Move focus to the new view's heading so keyboard and screen-reader users start there.
    heading.tabIndex = -1;
    heading.focus();
  }
  firstRoute = false;
  show(m, query);
}

function showKeyState() {
  const state = $("key-state");
  if (apiKey()) state.textContent = "key set for this browser session";
  else state.textContent = document.body.dataset.auth === "off" ? "authentication is off" : "no key yet";
}

function initKeyForm() {
  const input = $("api-key");
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    input.value = "";
    showKeyState();
    route(); // re-read the current view with the new key
  });
  $("key-forget").addEventListener("click", () => {
    setApiKey("");
    showKeyState();
  });
  onUnauthorized(() => {
    $("key-state").textContent = apiKey() ? "the API refused this key: enter another" : "enter your API key";
  });
  showKeyState();
}

initKeyForm();
initStudio({
  submitted(job, submittedAt) {
    pendingSubmit = { id: job.id, submittedAt };
    location.hash = `#/jobs/${job.id}`;
  },
});
initJob();
initGallery({ openBatch: (id) => { location.hash = `#/batches/${id}`; } });
initBatch();
initStyles();
if (videos) videos.initVideos();
window.addEventListener("hashchange", route);
route();
document.documentElement.dataset.ready = "true"; // tests wait for this
