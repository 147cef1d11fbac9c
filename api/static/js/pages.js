// What the cursor-paged list views share (the gallery of jobs, style models, videos): the API's next_cursor names
// the last item seen, so a view keeps {cursors: [null, ...], page, next} and moves along the cursors it was given.
// Elements follow one naming: <prefix>-list, -empty, -newer, -older. Also the detail views' Cancel button.

import { request } from "./api.js";
import { $, showError } from "./dom.js";

/** The query of the view's current page: limit, and the cursor that page starts after (none for the first). */
export function pageQuery(state, pageSize) {
  const query = new URLSearchParams({ limit: String(pageSize) });
  if (state.cursors[state.page]) query.set("cursor", state.cursors[state.page]);
  return query;
}

/** Shows one page of `items` (each built by `render`) and enables the pager buttons that lead somewhere. */
export function showPage(prefix, state, items, nextCursor, render) {
  state.next = nextCursor;
  $(`${prefix}-list`).replaceChildren(...items.map(render));
  $(`${prefix}-empty`).hidden = items.length > 0 || state.page > 0;
  $(`${prefix}-newer`).disabled = state.page === 0;
  $(`${prefix}-older`).disabled = !state.next;
}

/** Wires the older/newer buttons; `getState` returns the view's current state (null once it was left). */
export function bindPager(prefix, getState, load) {
  $(`${prefix}-older`).addEventListener("click", () => {
    const state = getState();
    if (!state || !state.next) return;
    state.cursors[state.page + 1] = state.next;
    state.page += 1;
    load();
  });
  $(`${prefix}-newer`).addEventListener("click", () => {
    const state = getState();
    if (!state || state.page === 0) return;
    state.page -= 1;
    load();
  });
}

/** Wires a detail view's Cancel button: POST <collection>/<id>/cancel, show the answer, refresh the watcher. */
export function bindCancel(buttonId, getCurrent, collection, render, errorId) {
  $(buttonId).addEventListener("click", async () => {
    const current = getCurrent();
    if (!current) return;
    try {
      render(await request(`${collection}/${encodeURIComponent(current.id)}/cancel`, { method: "POST" }));
      current.watcher.refresh();
    } catch (err) {
      showError($(errorId), err);
    }
  });
}
