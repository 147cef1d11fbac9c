// Talking to the /v1 API: the bearer key (once per browser session, sessionStorage; never a cookie, so no CSRF
// surface), JSON errors as ApiError, authenticated images as blob: URLs, and Server-Sent Events read through
// fetch (EventSource cannot send an Authorization header).

const KEY_NAME = "atelier.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY_NAME) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_NAME, key);
  else sessionStorage.removeItem(KEY_NAME);
}

export function authHeaders(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : { ...extra };
}

/** An answer of the API that is not 2xx: `code` and `message` are the API's own (api/errors.py). */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON (a proxy's page): fall back to the status line
  }
  const error = body && body.error;
  if (error && error.message) return new ApiError(response.status, error.code, error.message, error.field);
  return new ApiError(response.status, "http_error", `the API answered ${response.status} ${response.statusText}`);
}

/** fetch() with the key; resolves to the parsed JSON body, rejects with ApiError. */
export async function request(path, { method = "GET", body, signal } = {}) {
  let response;
  try {
    response = await fetch(path, { method, body, signal, headers: authHeaders({ Accept: "application/json" }),
                                   cache: "no-store" });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", `the API could not be reached (${err.message})`);
  }
  if (response.status === 401) notifyUnauthorized();
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

/** An authenticated image or file as a blob: URL the caller revokes (see BlobUrls). */
export async function blobUrl(path, signal) {
  const response = await fetch(path, { headers: authHeaders(), signal });
  if (!response.ok) throw await errorOf(response);
  return URL.createObjectURL(await response.blob());
}

/** blob: URLs of one view, by API path: fetched once, revoked together when the view goes. */
export class BlobUrls {
  constructor() {
    this.urls = new Map();
  }

  get(path) {
    if (!this.urls.has(path)) {
      const pending = blobUrl(path);
      pending.catch(() => this.urls.delete(path));
      this.urls.set(path, pending);
    }
    return this.urls.get(path);
  }

  release() {
    for (const pending of this.urls.values()) pending.then((url) => URL.revokeObjectURL(url), () => {});
    this.urls.clear();
  }
}

const unauthorizedListeners = new Set();

export function onUnauthorized(listener) {
  unauthorizedListeners.add(listener);
}

function notifyUnauthorized() {
  for (const listener of unauthorizedListeners) listener();
}

// --- Server-Sent Events ------------------------------------------------------------------------------------------

/** Parse a text/event-stream body into {id, event, data} objects (the WHATWG event-stream format; `retry` and
 *  comments are ignored). */
async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { id: null, event: "message", data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
      if (line === "") {
        if (event.data.length) yield { id: event.id, event: event.event, data: event.data.join("\n") };
        event = { id: event.id, event: "message", data: [] };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") event.data.push(text);
      else if (field === "event") event.event = text;
      else if (field === "id") event.id = text;
    }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follow `path` (an SSE route such as /v1/jobs/{id}/events), calling onEvent({event, data, id}) with the JSON data
 * parsed. Reconnects with Last-Event-ID when the stream drops before isDone() says the work has ended. When the
 * route does not exist or keeps failing, calls onFallback(error) once and stops: the caller polls instead.
 * Returns {stop()}.
 */
export function followEvents(path, { onEvent, onFallback, isDone }) {
  const abort = new AbortController();
  let stopped = false;
  let lastId = null;
  let failures = 0;
  (async () => {
    while (!stopped) {
      try {
        const headers = authHeaders({ Accept: "text/event-stream" });
        if (lastId) headers["Last-Event-ID"] = lastId;
        const response = await fetch(path, { headers, signal: abort.signal, cache: "no-store" });
        if (response.status === 204) return; // resumed after `done`: nothing more will come (docs/events.md)
        const type = response.headers.get("Content-Type") || "";
        if (!response.ok || !type.startsWith("text/event-stream")) {
          const error = response.ok ? new ApiError(response.status, "not_event_stream", type) : await errorOf(response);
          if (response.status === 404 || response.status === 405 || response.ok) failures = Infinity;
          throw error;
        }
        failures = 0;
        for await (const message of readEvents(response.body)) {
          if (message.id) lastId = message.id;
          let data = null;
          try {
            data = JSON.parse(message.data);
          } catch {
            data = message.data;
          }
          onEvent({ event: message.event, data, id: message.id });
          if (stopped) return;
        }
        if (isDone()) return;
      } catch (err) {
        if (stopped) return;
        failures += 1;
        if (failures >= 3) {
          onFallback(err);
          return;
        }
      }
      await sleep(1000);
    }
  })();
  return {
    stop() {
      stopped = true;
      abort.abort();
    },
  };
}
