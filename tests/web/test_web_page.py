"""The studio page in a real headless Chromium against the real API app (real HTTP, real Redis; no worker: these
tests stop at the API's answers). The end-to-end run with a worker is tests/web/test_web_e2e.py."""

from __future__ import annotations

import dataclasses

import pytest
import requests
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from studio_browser import console_problems
from studio_page import open_page, set_field, visible_text, wait_for

from api.security_headers import API_CSP, PAGE_CSP
from services.tenants import KeyStore
from shared.jobs import new_job_id, new_job_record, new_style_model_record
from shared.params import PARAM_SPECS

pytestmark = pytest.mark.integration


def png_file(tmp_path, name: str, color: tuple[int, int, int], size: tuple[int, int] = (40, 32)):
    path = tmp_path / name
    Image.new("RGB", size, color).save(path, format="PNG")
    return path


def test_every_response_has_the_security_headers_and_the_page_a_strict_csp(serve_api):
    api = serve_api()
    page = requests.get(api.url + "/", timeout=10)
    script = requests.get(api.url + "/static/js/app.js", timeout=10)
    job_list = requests.get(api.url + "/v1/jobs", timeout=10)
    assert page.status_code == script.status_code == job_list.status_code == 200
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    assert "default-src 'self'" in PAGE_CSP and "unsafe-inline" not in PAGE_CSP and "frame-ancestors 'none'" in PAGE_CSP
    assert job_list.headers["Content-Security-Policy"] == API_CSP
    for response in (page, script, job_list):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "camera=()" in response.headers["Permissions-Policy"]
        assert "Set-Cookie" not in response.headers  # bearer keys only: no cookie, no CSRF surface
    assert "<script>" not in page.text and " style=" not in page.text  # no inline script or style for CSP to block
    assert script.headers["Content-Type"].startswith("text/javascript")


def test_the_form_comes_from_param_specs_and_the_page_has_no_console_errors_under_its_csp(serve_api, browser):
    api = serve_api()
    open_page(browser, api.url)
    # Every parameter of PARAM_SPECS has its field, with the spec's bounds, default and help.
    fields = browser.execute_script(
        "return [...document.querySelectorAll('[data-param]')].map(e => ({name: e.dataset.param, tag: e.tagName,"
        " min: e.getAttribute('min'), max: e.getAttribute('max'), value: e.value,"
        " options: e.tagName === 'SELECT' ? [...e.options].map(o => o.value) : null,"
        " help: document.getElementById(e.getAttribute('aria-describedby')).textContent}))")
    by_name = {field["name"]: field for field in fields}
    # style_blend is the blend slider of each style image, not a field of its own
    assert set(by_name) == {spec.name for spec in PARAM_SPECS if spec.kind != "float_list"}
    for spec in PARAM_SPECS:
        if spec.kind == "float_list":
            continue
        field = by_name[spec.name]
        assert spec.help in " ".join(field["help"].split())
        if spec.kind in ("int", "float"):
            assert float(field["min"]) == spec.minimum and float(field["max"]) == spec.maximum, spec.name
            assert float(field["value"]) == spec.default, spec.name
        if spec.kind == "choice":
            assert field["tag"] == "SELECT" and field["options"] == list(spec.choices)
            assert field["value"] == spec.default
    # Every view once (hash routes: no reload), with no console error.
    for route, view in (("#/gallery", "gallery"), ("#/styles", "styles"), ("#/", "studio")):  # hash routes
        browser.execute_script("location.hash = arguments[0]", route)
        wait_for(browser, lambda d, v=view: d.find_element(By.CSS_SELECTOR, f"[data-view={v}]").is_displayed())
    assert console_problems(browser) == []
    # The policy is enforced, not only sent: an injected inline script does not run and is reported.
    browser.execute_script("const s = document.createElement('script'); s.textContent = 'window.injected = 1';"
                           "document.body.append(s);")
    assert browser.execute_script("return window.injected") is None
    problems = console_problems(browser)
    assert any("Content Security Policy" in entry["message"] for entry in problems), problems


def test_bounds_checked_in_the_page_a_bad_file_refused_by_the_api_then_submit_and_cancel(serve_api, browser, tmp_path):
    api = serve_api()
    fake = tmp_path / "holiday.png"
    fake.write_bytes(b"this is not a picture at all")
    style = png_file(tmp_path, "style.png", (20, 90, 200))
    # What the API itself answers to these bytes:
    refused = requests.post(api.url + "/v1/jobs", files={"content": ("holiday.png", fake.read_bytes(), "image/png"),
                                                          "style": ("style.png", style.read_bytes(), "image/png")},
                            timeout=10)
    assert refused.status_code == 415
    error = refused.json()["error"]

    open_page(browser, api.url)
    browser.find_element(By.ID, "content-file").send_keys(str(fake))
    browser.find_element(By.ID, "style-file").send_keys(str(style))
    # First the page's own check, with the spec's "allowed" text; nothing is sent.
    set_field(browser, "p-size", "5")
    browser.find_element(By.ID, "submit").click()
    shown = wait_for(browser, lambda d: visible_text(d, "studio-error"), what="the page's own check")
    assert "Size:" in shown and "an integer from 16 to 4096" in shown
    assert browser.find_element(By.ID, "p-size").get_attribute("aria-invalid") == "true"
    assert browser.switch_to.active_element.get_attribute("id") == "p-size"
    assert requests.get(api.url + "/v1/jobs", timeout=10).json()["jobs"] == []
    # Then the API's refusal of the file, in the API's words.
    set_field(browser, "p-size", "32")
    browser.find_element(By.ID, "submit").click()
    shown = wait_for(browser, lambda d: "refused" in visible_text(d, "studio-error") and visible_text(d,
                     "studio-error"), what="the API's error in the page")
    assert error["message"] in shown and error["code"] in shown
    assert browser.execute_script("return location.hash") in ("", "#/")  # still on the form
    assert requests.get(api.url + "/v1/jobs", timeout=10).json()["jobs"] == []
    # A real picture is accepted (202): the job's page shows it queued (no worker here), and cancel ends it.
    browser.find_element(By.ID, "content-file").send_keys(str(png_file(tmp_path, "real.png", (180, 120, 60))))
    browser.find_element(By.ID, "submit").click()
    wait_for(browser, lambda d: d.execute_script("return location.hash").startswith("#/jobs/"), what="the job view")
    job_id = browser.execute_script("return location.hash").rsplit("/", 1)[1]
    wait_for(browser, lambda d: d.find_element(By.ID, "job-status").text.lower() == "queued", what="queued")
    assert "waiting for a worker" in browser.find_element(By.ID, "job-progress-text").text
    browser.find_element(By.ID, "job-cancel").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "job-status").text.lower() == "canceled", what="canceled")
    assert not browser.find_element(By.ID, "job-cancel").is_displayed()
    job = requests.get(f"{api.url}/v1/jobs/{job_id}", timeout=10).json()
    assert job["status"] == "canceled" and job["params"]["size"] == 32 and job["inputs"]["content_name"] == "real.png"


def test_keyboard_only_reaches_every_control_of_the_form_in_order_and_submits(serve_api, browser):
    api = serve_api()
    open_page(browser, api.url)
    # Record every focus change with its accessible name, then press Tab 30 times as a keyboard would (keys to the
    # page, not to an element), in one go: a round trip per key costs more than the whole test.
    browser.execute_script(
        "window.focusOrder = []; document.addEventListener('focusin', (event) => { const e = event.target;"
        " window.focusOrder.push({id: e.id || e.textContent.trim() || e.tagName, named: Boolean(e.labels &&"
        " e.labels.length || e.getAttribute('aria-label') || e.textContent.trim())}); });")
    ActionChains(browser).send_keys(*[Keys.TAB] * 30).perform()
    focused = browser.execute_script("return window.focusOrder")
    order = [entry["id"] for entry in focused]
    assert "submit" in order, order
    focused = focused[:order.index("submit") + 1]
    assert [entry["id"] for entry in focused if not entry["named"]] == [], "focused controls without a name"
    order = [entry["id"] for entry in focused]
    assert order[0] == "Skip to content"
    expected = ["api-key", "content-file", "style-file", "p-style_model", "p-size", "p-iterations", "submit"]
    positions = [order.index(name) for name in expected]
    assert positions == sorted(positions), order
    # Keyboard only: type a bad iteration count into its field and press Enter; the page refuses it by itself.
    browser.find_element(By.ID, "p-iterations").click()  # (a click only to place the caret; then keys only)
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).send_keys("0", Keys.ENTER) \
        .perform()
    shown = wait_for(browser, lambda d: visible_text(d, "studio-error"), what="the form's message")
    assert "Iterations:" in shown and "Choose a content image." in shown
    # Files dropped on the zones are taken, in order; a style's blend slider moves with the arrow keys.
    browser.execute_script(
        "const drop = (zone, names) => { const dt = new DataTransfer(); for (const n of names) dt.items.add("
        "new File(['x'], n, {type: 'image/png'})); document.querySelector(`[data-drop=${zone}]`).dispatchEvent("
        "new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); };"
        "drop('content', ['cat.png']); drop('style', ['wave.png', 'starry.png', 'scream.png']);")
    assert "cat.png" in browser.find_element(By.ID, "content-name").text
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#style-list label")]
    assert labels == ["Blend of wave.png", "Blend of starry.png", "Blend of scream.png"]
    browser.find_element(By.CSS_SELECTOR, "#style-list button").send_keys(Keys.ENTER)  # remove the first
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#style-list label")]
    assert labels == ["Blend of starry.png", "Blend of scream.png"]
    slider = browser.find_element(By.ID, "blend-0")
    slider.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    assert float(slider.get_attribute("value")) == pytest.approx(1.2)
    assert "55% of the mix" in browser.find_element(By.ID, "blend-0-share").text


def test_the_gallery_pages_the_tenants_jobs_newest_first(serve_api, browser):
    api = serve_api()
    ids = []
    for index in range(14):
        job_id = new_job_id()
        record = new_job_record(job_id, params={"size": 32}, content_key="inputs/x.png", style_keys=[],
                                content_name=f"photo-{index:02d}.png", style_names=["s.png"], queue="interactive")
        # distinct creation times (the index orders by them; records made in one millisecond would tie)
        api.registry.create(dataclasses.replace(record, created_at=f"2026-12-01T10:00:{index:02d}.000Z"))
        ids.append(job_id)
    open_page(browser, api.url, "#/gallery")
    cards = lambda d: d.execute_script(  # noqa: E731 - one read of the list (it is re-rendered while jobs run)
        "return [...document.querySelectorAll('#gallery-list a')].map(a => a.getAttribute('href').split('/').pop())")
    first = wait_for(browser, lambda d: cards(d) if len(cards(d)) == 12 else None, what="a page of 12 jobs")
    assert first == ids[::-1][:12]
    browser.find_element(By.ID, "gallery-older").click()
    second = wait_for(browser, lambda d: cards(d) if len(cards(d)) == 2 else None, what="the older page")
    assert second == ids[::-1][12:]
    assert browser.find_element(By.ID, "gallery-older").get_attribute("disabled")
    browser.find_element(By.ID, "gallery-newer").click()
    wait_for(browser, lambda d: len(cards(d)) == 12, what="the newest page again")


def test_the_api_key_is_asked_once_per_session_and_sent_as_a_bearer_token(serve_api, browser, tmp_path):
    api = serve_api(auth="on")
    mine = KeyStore(api.redis).create("alice").token
    api.registry.create(new_job_record(new_job_id(), params={}, content_key="inputs/x.png", style_keys=[],
                                       content_name="alice.png", style_names=[], queue="interactive",
                                       tenant="alice"))
    api.registry.create(new_job_record(new_job_id(), params={}, content_key="inputs/y.png", style_keys=[],
                                       content_name="bob.png", style_names=[], queue="interactive", tenant="bob"))
    open_page(browser, api.url, "#/gallery")
    refused = wait_for(browser, lambda d: visible_text(d, "app-error"), what="the 401 message")
    assert "needs an API key" in refused
    browser.find_element(By.ID, "api-key").send_keys(mine, Keys.ENTER)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#gallery-list a"), what="alice's gallery")
    assert "alice.png" in browser.find_element(By.ID, "gallery-list").text
    assert "bob.png" not in browser.find_element(By.ID, "gallery-list").text
    assert browser.execute_script("return sessionStorage.getItem('atelier.apiKey')") == mine
    assert browser.get_cookies() == []
    # A reload keeps the key (same browser session); the page never put it in the URL.
    open_page(browser, api.url, "#/gallery")
    wait_for(browser, lambda d: "alice.png" in d.find_element(By.ID, "gallery-list").text, what="the gallery again")
    assert mine not in browser.current_url
    browser.execute_script("sessionStorage.clear()")
    console_problems(browser)  # drain this test's expected 401 entries


def test_batch_page_shows_each_items_state_and_cancels_and_the_other_lists_render(serve_api, browser, tmp_path):
    api = serve_api()
    files = [("content", (name, png_file(tmp_path, name, color).read_bytes(), "image/png"))
             for name, color in (("first.png", (200, 30, 30)), ("second.png", (30, 200, 30)))]
    files.append(("style", ("style.png", png_file(tmp_path, "style.png", (30, 30, 200)).read_bytes(), "image/png")))
    created = requests.post(api.url + "/v1/batches", files=files, data={"params": '{"size": 32}'}, timeout=10)
    assert created.status_code == 201, created.text
    batch_id = created.json()["id"]

    open_page(browser, api.url, f"#/batches/{batch_id}")
    rows = lambda d: d.execute_script(  # noqa: E731
        "return [...document.querySelectorAll('#batch-items tr')].map(r => [...r.cells].map(c => c.textContent))")
    queued = wait_for(browser, lambda d: rows(d) if len(rows(d)) == 2 else None, what="the batch's two items")
    assert [row[:2] for row in queued] == [["first.png", "queued"], ["second.png", "queued"]]
    assert "2 items: 2 queued" in browser.find_element(By.ID, "batch-counts").text
    browser.find_element(By.ID, "batch-cancel").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "batch-status").text.lower() == "canceled", what="canceled")
    wait_for(browser, lambda d: [row[1] for row in rows(d)] == ["canceled", "canceled"], what="canceled items")
    assert requests.get(f"{api.url}/v1/batches/{batch_id}", timeout=10).json()["status"] == "canceled"

    for route, empty in (("#/styles", "styles-empty"), ("#/videos", "videos-empty")):
        browser.execute_script("location.hash = arguments[0]", route)
        wait_for(browser, lambda d, e=empty: d.find_element(By.ID, e).is_displayed(), what=f"{route} (empty)")
    assert console_problems(browser) == []


def test_a_trained_style_model_is_listed_and_used_from_its_page_in_the_studio(serve_api, browser):
    api = serve_api()
    model_id = new_job_id()
    record = new_style_model_record(model_id, params={"steps": 10}, style_keys=["inputs/s.png"],
                                    style_names=["starry.jpg"], train_keys=[], train_names=[], from_batch=None)
    api.registry.create(dataclasses.replace(record, status="succeeded", progress={
        "iteration": 10, "iterations": 10, "percent": 100.0, "losses": {}, "eta_s": 0.0, "elapsed_s": 3.0}))
    open_page(browser, api.url, "#/styles")
    link = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, f'#styles-list a[href="#/styles/{model_id}"]'),
                    what="the model in the list")
    assert "starry.jpg" in browser.find_element(By.ID, "styles-list").text
    link.click()
    use = wait_for(browser, lambda d: d.find_element(By.ID, "style-use") if d.find_element(By.ID, "style-use")
                   .is_displayed() else None, what="'use in the studio'")
    assert browser.find_element(By.ID, "style-status").text.lower() == "succeeded"
    use.click()
    wait_for(browser, lambda d: d.find_element(By.ID, "p-style_model").get_attribute("value") == model_id,
             what="the model chosen in the studio")
    assert "starry.jpg" in browser.find_element(By.CSS_SELECTOR, "#p-style_model option:checked").text
    assert "style model is the style" in browser.find_element(By.ID, "style-count").text
    assert console_problems(browser) == []
