"""Debian's Chromium, driven through its own chromedriver (Selenium, headless): nothing is
downloaded. The browser tests and `make screenshot` both drive it with these functions."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 20  # seconds an element may take to appear (never "network idle": the stream never is)


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    if shutil.which("chromium") is None or not Path(CHROMEDRIVER).exists():
        return "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
    return None


@contextmanager
def chromium(width: int = 1400, height: int = 900) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, css: str, timeout: float = WAIT) -> WebElement:
    element: WebElement = WebDriverWait(driver, timeout).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css))
    )
    return element


def wait_until(driver: WebDriver, check: Callable[[WebDriver], Any], timeout: float = WAIT) -> Any:
    return WebDriverWait(driver, timeout, ignored_exceptions=(Exception,)).until(check)


def text_of(driver: WebDriver, css: str) -> str:
    """The text of what `css` finds, read again if the live page replaced it meanwhile."""
    for _ in range(20):
        try:
            return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"{css} kept being replaced")


def sign_in(driver: WebDriver, base_url: str, api_key: str, api_secret: str) -> None:
    driver.get(base_url + "/inbox")
    wait(driver, "#login-form")
    driver.find_element(By.ID, "api_key").send_keys(api_key)
    driver.find_element(By.ID, "api_secret").send_keys(api_secret)
    driver.find_element(By.ID, "sign-in").click()
    wait_until(
        driver, lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "connected"
    )


def click(driver: WebDriver, css: str, timeout: float = WAIT) -> None:
    """Click the element `css` finds, found again if the live page replaced it meanwhile."""

    def clicked(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, css).click()
        return True

    wait_until(driver, clicked, timeout)
