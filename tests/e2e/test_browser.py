"""The browser fixture itself (tests/browser.py) against a small page served on 127.0.0.1:
Japanese text comes back exactly, a dialog is seen when one fires, screenshots are written,
and Selenium Manager is never asked for a driver."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchDriverException
from selenium.webdriver.common.by import By

from tests.browser import (
    CHROMIUM,
    SeleniumManagerCalled,
    alert_text,
    chromium_options,
    fresh_page,
    screenshot,
)

PAGES = {
    "/": "<h1 id='t'>保留中のメール ①㈱～</h1><p>パスワードを入力してください</p>",
    "/alert": "<p id='t'>x</p><script>alert('発火')</script>",
}


class _Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        data = f"<!doctype html><html lang='ja'><meta charset='utf-8'>{body}</html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_japanese_page_read_and_photographed(browser: webdriver.Chrome, site: str) -> None:
    driver = fresh_page(browser)
    driver.get(site + "/")
    assert driver.find_element(By.ID, "t").text == "保留中のメール ①㈱～"
    assert alert_text(driver) is None
    shot = screenshot(driver, "fixture-japanese")
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_a_dialog_that_fires_is_seen(browser: webdriver.Chrome, site: str) -> None:
    # The XSS tests rely on alert_text seeing a dialog: it must be able to fail.
    driver = fresh_page(browser)
    driver.get(site + "/alert")
    assert alert_text(driver) == "発火"
    fresh_page(driver)
    assert alert_text(driver) is None


def test_selenium_manager_is_never_asked(browser: webdriver.Chrome, tmp_path: Path) -> None:
    # Without an explicit driver path selenium would run Selenium Manager, which downloads;
    # the session fixture turns that into a failure, so no test can do it by accident.
    options = chromium_options(tmp_path)
    assert options.binary_location == CHROMIUM
    with pytest.raises(NoSuchDriverException) as raised:
        webdriver.Chrome(options=options)
    assert isinstance(raised.value.__cause__, SeleniumManagerCalled)
