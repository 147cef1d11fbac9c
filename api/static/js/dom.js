// Small DOM helpers: elements are built with textContent, never innerHTML, so no API value is parsed as HTML.

export const $ = (id) => document.getElementById(id);

/** el("a", {href: "#/x", class: "card"}, "text", childNode) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function showError(node, error, prefix = "") {
  if (!error) {
    node.hidden = true;
    node.replaceChildren();
    return;
  }
  const code = error.code ? ` (${error.code})` : "";
  node.replaceChildren(el("strong", {}, `${prefix}${error.message || error}`), el("span", { class: "note" }, code));
  node.hidden = false;
}

export function setStatus(node, status) {
  node.textContent = status || "…";
  node.dataset.status = status || "";
}

// Jobs, style models and videos end succeeded, failed or canceled; a batch ends finished or canceled.
export const TERMINAL = new Set(["succeeded", "failed", "canceled", "finished"]);

export function isTerminal(status) {
  return TERMINAL.has(status);
}

export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "unknown";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function formatNumber(value) {
  if (typeof value !== "number") return String(value);
  if (value !== 0 && (Math.abs(value) >= 1e5 || Math.abs(value) < 1e-3)) return value.toExponential(3);
  return value.toPrecision(4).replace(/\.?0+$/, "");
}

export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** A progress record {iteration, iterations, percent, eta_s} as bar value and text. */
export function progressText(progress, unit = "Iteration") {
  if (!progress) return "";
  const parts = [`${unit} ${progress.iteration} of ${progress.iterations}`, `${progress.percent}%`];
  if (progress.eta_s !== null && progress.eta_s !== undefined) parts.push(`about ${formatSeconds(progress.eta_s)} left`);
  return parts.join(" · ");
}
