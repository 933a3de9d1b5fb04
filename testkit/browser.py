"""Headless Debian Chromium driven by its chromedriver (selenium), for tests that use a page as a person does.

Never a browser download: `/usr/bin/chromium` and `/usr/bin/chromedriver` come from Debian
(`bin/ensure-browser`); a fresh profile per browser; the flags keep it off the network and quiet.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1100,1400")


def available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """A browser with its own throw-away profile; quit (and the profile removed) on exit."""
    if not available():
        raise RuntimeError(f"{CHROMIUM} / {CHROMEDRIVER} missing: run bin/ensure-browser (Debian packages)")
    profile = tempfile.mkdtemp(prefix="dtbot-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
