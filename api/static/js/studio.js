// The studio form: content and style images (file inputs and drop zones), a blend slider per style, the parameters
// rendered server-side from shared/params.py PARAM_SPECS (api/web_form.py), validated here with the same bounds
// (HTML constraints) and then by the API, whose JSON error message is shown when it refuses.

import { ApiError, request } from "./api.js";
import { $, el, showError } from "./dom.js";

const MAX_STYLES = Number(document.body.dataset.maxStyles || 8);
const BLEND_SLIDER_MAX = 2; // relative weights (the API normalises them to sum to 1): equal weights sit mid-way
const state = { content: null, styles: [], thumbs: new Map() };
let onSubmitted = () => {};

function thumbUrl(file) {
  if (!state.thumbs.has(file)) state.thumbs.set(file, URL.createObjectURL(file));
  return state.thumbs.get(file);
}

function forget(file) {
  const url = state.thumbs.get(file);
  if (url) URL.revokeObjectURL(url);
  state.thumbs.delete(file);
}

function setContent(file) {
  if (state.content) forget(state.content);
  state.content = file;
  const thumb = $("content-thumb");
  thumb.hidden = !file;
  if (file) {
    thumb.src = thumbUrl(file);
    thumb.alt = `Content image ${file.name}`;
  }
  $("content-name").textContent = file ? `${file.name} (${Math.ceil(file.size / 1024)} KB)` : "";
}

function addStyles(files) {
  const room = MAX_STYLES - state.styles.length;
  const added = [...files].slice(0, Math.max(room, 0));
  for (const file of added) state.styles.push({ file, weight: 1 });
  if (files.length > added.length) {
    showError($("studio-error"), { message: `at most ${MAX_STYLES} style images; ${files.length - added.length} `
                                            + "left out" });
  }
  renderStyles();
}

function removeStyle(index) {
  forget(state.styles[index].file);
  state.styles.splice(index, 1);
  renderStyles();
  const buttons = document.querySelectorAll("#style-list button");
  (buttons[Math.min(index, buttons.length - 1)] || $("style-file")).focus();
}

function renderStyles() {
  const list = $("style-list");
  const minimum = list.dataset.blendMin || "0";
  const total = state.styles.reduce((sum, style) => sum + style.weight, 0);
  list.replaceChildren(...state.styles.map((style, index) => {
    const id = `blend-${index}`;
    const share = el("output", { class: "share", for: id, id: `${id}-share` },
                     total > 0 ? `${Math.round((100 * style.weight) / total)}% of the mix` : "0%");
    const slider = el("input", { type: "range", id, min: minimum, max: BLEND_SLIDER_MAX, step: "0.1",
                                 value: style.weight, "aria-describedby": `${id}-share`,
                                 dataset: { blendIndex: index } });
    slider.addEventListener("input", () => {
      state.styles[index].weight = Number(slider.value);
      updateShares();
    });
    const remove = el("button", { type: "button", "aria-label": `Remove style ${style.file.name}` }, "Remove");
    remove.addEventListener("click", () => removeStyle(index));
    return el("li", {}, el("img", { src: thumbUrl(style.file), alt: `Style ${index + 1}: ${style.file.name}` }),
              el("label", { for: id }, `Blend of ${style.file.name}`), slider, share, remove);
  }));
  const count = state.styles.length;
  $("style-count").textContent = count ? `${count} style${count > 1 ? "s" : ""} chosen` : "";
}

function updateShares() {
  const total = state.styles.reduce((sum, style) => sum + style.weight, 0);
  state.styles.forEach((style, index) => {
    $(`blend-${index}-share`).textContent = total > 0 ? `${Math.round((100 * style.weight) / total)}% of the mix`
      : "0%";
  });
}

function wireDropZone(zone, onFiles) {
  const stop = (event) => {
    event.preventDefault();
    event.stopPropagation();
  };
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      stop(event);
      zone.classList.add("dragging");
    });
  }
  zone.addEventListener("dragleave", (event) => {
    stop(event);
    if (!zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
  });
  zone.addEventListener("drop", (event) => {
    stop(event);
    zone.classList.remove("dragging");
    const files = [...(event.dataTransfer ? event.dataTransfer.files : [])];
    if (files.length) onFiles(files);
  });
}

// --- parameters -------------------------------------------------------------------------------------------------

function paramInputs() {
  return [...document.querySelectorAll("#studio-form [data-param]")];
}

/** The value of one field as the API wants it, or undefined when it is the default (the API's default applies). */
function fieldValue(input) {
  const raw = input.value.trim();
  if (raw === input.dataset.default || raw === "") return undefined;
  const kind = input.dataset.kind;
  if (kind === "int" || kind === "optional_int" || kind === "float") return Number(raw);
  if (kind === "choice" || kind === "model_id" || kind === "layer_weights") return raw;
  try {
    return JSON.parse(raw); // a kind this page does not know: JSON when it parses, text otherwise
  } catch {
    return raw;
  }
}

function collectParams() {
  const params = {};
  for (const input of paramInputs()) {
    const value = fieldValue(input);
    if (value !== undefined) params[input.dataset.param] = value;
  }
  if (state.styles.length > 1 && !params.style_model) params.style_blend = state.styles.map((s) => s.weight);
  return params;
}

function usingModel() {
  const select = $("p-style_model");
  return Boolean(select && select.value);
}

/** Problems the page can see before sending: the browser's constraint checks with the spec's "allowed" text. */
function problems() {
  const found = [];
  for (const input of paramInputs()) {
    input.removeAttribute("aria-invalid");
    if (!input.checkValidity()) {
      input.setAttribute("aria-invalid", "true");
      const label = document.querySelector(`label[for="${input.id}"]`).textContent;
      found.push({ input, message: `${label}: ${input.validationMessage} Allowed: ${input.dataset.allowed}.` });
    }
  }
  if (!state.content) found.push({ input: $("content-file"), message: "Choose a content image." });
  if (!usingModel() && state.styles.length === 0) {
    found.push({ input: $("style-file"), message: "Choose at least one style image (or a style model)." });
  }
  if (usingModel() && state.styles.length) {
    found.push({ input: $("style-file"), message: "A style model is the style: remove the style images, or choose "
                                                  + "no style model." });
  }
  if (!usingModel() && state.styles.length && state.styles.every((s) => s.weight === 0)) {
    found.push({ input: $("blend-0"), message: "At least one blend weight must be above 0." });
  }
  return found;
}

async function submit(event) {
  event.preventDefault();
  const errorBox = $("studio-error");
  const found = problems();
  if (found.length) {
    errorBox.replaceChildren(el("strong", {}, "Please fix these before sending:"),
                             el("ul", {}, ...found.map((p) => el("li", {}, p.message))));
    errorBox.hidden = false;
    found[0].input.focus();
    return;
  }
  showError(errorBox, null);
  const form = new FormData();
  form.append("content", state.content, state.content.name);
  if (!usingModel()) for (const style of state.styles) form.append("style", style.file, style.file.name);
  form.append("params", JSON.stringify(collectParams()));
  const button = $("submit");
  button.disabled = true;
  button.textContent = "Sending…";
  const submittedAt = performance.now();
  try {
    const job = await request("/v1/jobs", { method: "POST", body: form });
    onSubmitted(job, submittedAt);
  } catch (err) {
    const error = err instanceof ApiError ? err : { message: String(err) };
    showError(errorBox, error, "The API refused the job: ");
    const field = error.field && document.querySelector(`[data-param="${error.field}"]`);
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    } else {
      errorBox.focus?.();
    }
  } finally {
    button.disabled = false;
    button.textContent = "Style it";
  }
}

async function loadStyleModels() {
  const select = $("p-style_model");
  if (!select) return;
  try {
    const body = await request("/v1/styles?status=succeeded&limit=100");
    const chosen = select.value;
    select.replaceChildren(select.options[0], ...body.styles.map((model) => el(
      "option", { value: model.id },
      `${(model.inputs.style_names || []).join(" + ") || "model"} (${model.id.slice(0, 8)})`)));
    select.value = chosen;
  } catch {
    // no key yet, or no access: the select keeps "none"
  }
}

function syncModelChoice() {
  const model = usingModel();
  $("style-zone").classList.toggle("disabled", model);
  if (model) $("style-count").textContent = "not used: the style model is the style";
  else renderStyles();
}

export function initStudio({ submitted }) {
  onSubmitted = submitted;
  const contentInput = $("content-file");
  const styleInput = $("style-file");
  contentInput.addEventListener("change", () => setContent(contentInput.files[0] || null));
  styleInput.addEventListener("change", () => {
    addStyles(styleInput.files);
    styleInput.value = ""; // the list keeps them; choosing again adds more
  });
  wireDropZone(document.querySelector('[data-drop="content"]'), (files) => setContent(files[0]));
  wireDropZone(document.querySelector('[data-drop="style"]'), addStyles);
  // A file dropped outside a zone would make the browser navigate away from the page.
  for (const name of ["dragover", "drop"]) window.addEventListener(name, (event) => event.preventDefault());
  const form = $("studio-form");
  form.addEventListener("submit", submit);
  form.addEventListener("reset", () => {
    setContent(null);
    for (const style of state.styles) forget(style.file);
    state.styles = [];
    renderStyles();
    showError($("studio-error"), null);
    for (const input of paramInputs()) input.removeAttribute("aria-invalid");
    setTimeout(syncModelChoice); // after the browser has put the fields back to their defaults
  });
  for (const input of paramInputs()) input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
  const select = $("p-style_model");
  if (select) select.addEventListener("change", syncModelChoice);
}

/** Show the studio; `query` may name a style_model to preselect (#/?style_model=<id>). */
export async function showStudio(query) {
  await loadStyleModels();
  const model = query.get("style_model");
  const select = $("p-style_model");
  if (model && select) {
    if (![...select.options].some((o) => o.value === model)) select.append(el("option", { value: model }, model));
    select.value = model;
    syncModelChoice();
  }
}
