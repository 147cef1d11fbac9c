"""A headless Chromium driven by Selenium, for the studio's browser tests (tests/web).

Debian's ``chromium`` and ``chromium-driver`` packages (``/usr/bin/chromium``, ``/usr/bin/chromedriver``; the
Makefile installs them with apt when missing). Both paths are given explicitly, so Selenium Manager never runs and
nothing is downloaded. As root Chromium needs ``--no-sandbox``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1280, 900)


def missing_browser() -> str | None:
    """Why the browser cannot start here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} is missing: apt-get install -y {package} (the Makefile's browser step does it)"
    return None


def start_chromium(download_dir: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--metrics-recording-only", "--no-default-browser-check",
                f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                              "download.prompt_for_download": False})
    service = Service(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_script_timeout(20)
    return driver


def console_problems(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Console entries at SEVERE level since the last call (CSP violations, uncaught errors, failed loads)."""
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def which_chromium() -> str | None:
    return shutil.which("chromium")
