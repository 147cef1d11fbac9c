"""Helpers for driving the studio page in tests: open a route and wait until the script has run, wait for a
condition, type into the form, and save screenshots."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# Set ATELIER_WEB_SCREENSHOTS=docs/web to refresh the README's screenshots; tests always write them to tmp.
SCREENSHOTS_ENV = "ATELIER_WEB_SCREENSHOTS"


def open_page(driver: Any, url: str, route: str = "#/") -> None:
    driver.get("about:blank")
    driver.get_log("browser")  # drop the console entries of earlier tests (the browser is shared per module)
    driver.get(url + "/" + route)
    wait_for(driver, lambda d: d.execute_script("return document.documentElement.dataset.ready") == "true",
             what="the page's script to start")


def wait_for(driver: Any, condition: Callable[[Any], Any], timeout_s: float = 10.0, what: str = "") -> Any:
    return WebDriverWait(driver, timeout_s, poll_frequency=0.05).until(condition, message=f"waiting for {what}")


def visible_text(driver: Any, element_id: str) -> str:
    element = driver.find_element(By.ID, element_id)
    return element.text if element.is_displayed() else ""


def set_field(driver: Any, element_id: str, value: str) -> None:
    element = driver.find_element(By.ID, element_id)
    element.clear()
    element.send_keys(value)


def screenshot(driver: Any, tmp: Path, name: str, height_px: int | None = None) -> Path:
    """Save ``name``.png under ``tmp`` (and under $ATELIER_WEB_SCREENSHOTS when set); the whole page's height when
    ``height_px`` is None."""
    driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    width = driver.execute_script("return window.outerWidth")
    height = height_px or driver.execute_script("return document.documentElement.scrollHeight") + 100
    driver.set_window_size(width, min(height, 2400))
    time.sleep(0.1)
    path = tmp / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(width, 900)
    target = os.environ.get(SCREENSHOTS_ENV)
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(target) / path.name)
    return path
