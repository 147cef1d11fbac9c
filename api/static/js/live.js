// Keeping a view up to date: the resource's SSE route when the API has one (docs/events.md), polling otherwise.
// Events are used as triggers to re-read the resource (throttled), so every view renders from one source: the
// GET answer. The job view also applies progress events directly (js/job.js).

import { followEvents, request } from "./api.js";
import { isTerminal } from "./dom.js";

const POLL_MS = 700;
const REFRESH_GAP_MS = 250;

/**
 * watch({path, eventsPath, render, onError, onEvent}): GET `path` now and whenever it may have changed; render(body)
 * each time; stop when body.status is terminal. Returns {stop(), refresh()}.
 */
export function watch({ path, eventsPath, render, onError, onEvent }) {
  let stopped = false;
  let body = null;
  let inFlight = null;
  let again = false;
  let timer = null;
  let events = null;
  let lastRefresh = 0;

  async function refresh() {
    if (stopped) return;
    if (inFlight) {
      again = true;
      return;
    }
    const wait = lastRefresh + REFRESH_GAP_MS - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight = request(path);
    try {
      body = await inFlight;
      lastRefresh = Date.now();
      if (!stopped) render(body);
    } catch (err) {
      if (!stopped) onError(err);
    } finally {
      inFlight = null;
    }
    if (again && !stopped) {
      again = false;
      refresh();
    }
  }

  function poll() {
    if (stopped || (body && isTerminal(body.status))) return;
    timer = setTimeout(async () => {
      await refresh();
      poll();
    }, POLL_MS);
  }

  (async () => {
    await refresh();
    if (stopped || !body || isTerminal(body.status)) return;
    if (!eventsPath) {
      poll();
      return;
    }
    events = followEvents(eventsPath, {
      onEvent(message) {
        if (onEvent && onEvent(message) === "handled") return;
        refresh();
      },
      onFallback: poll,
      isDone: () => Boolean(body && isTerminal(body.status)),
    });
  })();

  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      if (events) events.stop();
    },
    refresh,
  };
}
