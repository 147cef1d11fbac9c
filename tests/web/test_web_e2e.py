"""The studio end to end in headless Chromium on the real stack (``local_stack``: gunicorn API, a Celery worker with
the real VGG19 weights): choose a content and two style images, submit, watch the progress bar move and previews
appear, see the result and download it, find it in the gallery. Also measures the time from submit to the first
progress the page shows (printed, and kept in the bar's ``data-first-progress-ms``).

ATELIER_WEB_SCREENSHOTS=docs/web refreshes the README's screenshots (bigger images; two jobs for the gallery first,
which also warms the worker, so that run measures the first progress on a warm worker).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from e2e.stack import CONTENT, EXAMPLES, STYLE
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from studio_browser import console_problems
from studio_page import SCREENSHOTS_ENV, open_page, screenshot, set_field, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECOND_STYLE = EXAMPLES / "style" / "munch_the_scream.jpg"
FOR_DOCS = bool(os.environ.get(SCREENSHOTS_ENV))
SIZE_PX = 128 if FOR_DOCS else 48
ITERATIONS = 40 if FOR_DOCS else 24
JOB_TIMEOUT_S = 600.0 if FOR_DOCS else 240.0

STATE_JS = """
const bar = document.getElementById('job-progress');
return {hash: location.hash, value: bar.value, first: bar.dataset.firstProgressMs || null,
        text: document.getElementById('job-progress-text').textContent,
        status: document.getElementById('job-status').textContent,
        previews: document.querySelectorAll('#job-previews img').length,
        result: !document.getElementById('job-download').hidden};
"""


def _fill_form(browser: Any) -> None:
    browser.find_element(By.ID, "content-file").send_keys(str(CONTENT))
    browser.find_element(By.ID, "style-file").send_keys(f"{STYLE}\n{SECOND_STYLE}")
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#style-list img")) == 2, what="two styles")
    browser.find_element(By.ID, "blend-1").send_keys(*[Keys.ARROW_LEFT] * 5)  # The Scream at 0.5: a third of the mix
    set_field(browser, "p-size", str(SIZE_PX))
    set_field(browser, "p-iterations", str(ITERATIONS))
    browser.execute_script("document.querySelector('details.advanced').open = true")
    set_field(browser, "p-progress_every", "2")


def _watch_job(browser: Any, shots: Path) -> tuple[list[dict[str, Any]], float]:
    """Poll the page every 50 ms until the result is shown; a screenshot of the job while it runs."""
    seen: list[dict[str, Any]] = []
    shot_taken = False
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        state = browser.execute_script(STATE_JS)
        seen.append(state)
        if not shot_taken and state["previews"] and not state["result"] and state["status"] == "running":
            screenshot(browser, shots, "job-running", height_px=900)
            shot_taken = True
        if state["result"]:
            return seen, time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"no result in the page within {JOB_TIMEOUT_S} s; last state {seen[-1]}")


def test_submit_two_styles_watch_progress_and_previews_download_the_result(local_stack, browser, downloads, tmp_path):
    api = local_stack.api_url
    if FOR_DOCS:
        _more_jobs_for_the_gallery(local_stack)  # first, so the page's job also runs on a warm worker
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    open_page(browser, api)
    _fill_form(browser)
    screenshot(browser, tmp_path, "studio-form")
    browser.find_element(By.ID, "submit").click()
    submitted = time.monotonic()
    wait_for(browser, lambda d: d.execute_script("return location.hash").startswith("#/jobs/"), 20, "the job view")
    job_id = browser.execute_script("return location.hash").rsplit("/", 1)[1]
    seen, finished = _watch_job(browser, tmp_path)

    values = [state["value"] for state in seen]
    assert values == sorted(values), "the progress bar went backwards"
    assert any(0 < value < 100 for value in values), f"the bar never showed progress before the end: {set(values)}"
    assert values[-1] == 100
    assert any("Iteration" in state["text"] and "left" in state["text"] for state in seen)  # iteration and ETA
    first_progress_ms = int(seen[-1]["first"])
    # The page followed the job's Server-Sent Events (docs/events.md), not only polling: the stream's fetch ended
    # with the job's `done` event, so it is in the page's resource timings.
    streams = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.endsWith('/events'))")
    assert any(f"/v1/jobs/{job_id}/events" in name for name in streams), streams
    print(f"\nstudio: submit to first visible progress {first_progress_ms} ms; to the result shown "
          f"{finished - submitted:.1f} s ({SIZE_PX} px, {ITERATIONS} iterations)")

    job = requests.get(f"{api}/v1/jobs/{job_id}", timeout=10).json()
    assert job["status"] == "succeeded"
    assert job["params"]["style_blend"] == [1.0, 0.5] and job["inputs"]["style_names"] == [STYLE.name,
                                                                                          SECOND_STYLE.name]
    previews = browser.find_elements(By.CSS_SELECTOR, "#job-previews img")
    assert len(previews) == len(job["previews"]) >= 1
    assert browser.find_element(By.ID, "job-result-img").get_attribute("src").startswith("blob:")
    assert browser.find_elements(By.CSS_SELECTOR, "#job-losses dt")  # the losses are listed
    assert not browser.find_element(By.ID, "job-cancel").is_displayed()  # nothing left to cancel

    browser.find_element(By.ID, "job-download").click()
    downloaded = downloads / f"{job_id}.png"
    wait_for(browser, lambda d: downloaded.exists() and downloaded.stat().st_size > 0, 20, "the download")
    assert downloaded.read_bytes() == requests.get(f"{api}/v1/jobs/{job_id}/result", timeout=10).content
    if FOR_DOCS:
        screenshot(browser, tmp_path, "job-done")

    open_page(browser, api, "#/gallery")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'#gallery-list a[href="#/jobs/{job_id}"] img'),
             20, "the job's card with its picture")
    time.sleep(0.3)  # the other cards' pictures
    screenshot(browser, tmp_path, "gallery", height_px=900)
    assert console_problems(browser) == []


def _more_jobs_for_the_gallery(stack: Any) -> None:
    """Two more results, so the gallery screenshot shows a few cards (docs only)."""
    client = stack.client
    ids = [client.submit(Path(content), [Path(style)], {"size": 96, "iterations": 30})["id"]
           for content, style in ((EXAMPLES / "content" / "astronaut_portrait.jpg", SECOND_STYLE),
                                  (EXAMPLES / "content" / "astronaut_portrait.jpg", STYLE))]
    for job_id in ids:
        client.wait(job_id, timeout_s=JOB_TIMEOUT_S)
