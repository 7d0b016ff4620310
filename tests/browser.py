"""A real browser for the console's tests: Debian's chromium driven by selenium through
Debian's chromedriver, both named by path.

Nothing here downloads a browser or a driver: the driver's path is given to selenium, so its
Selenium Manager (which would fetch one) is never asked, and the fixture makes sure of it by
replacing it with a failure for the whole session. ``make check`` installs the packages
(TEST_PACKAGES: chromium, chromium-driver, fonts-noto-cjk for the Japanese pages); without them
the tests that use the fixture fail naming the package, they never skip. Tests that use it get
the ``browser`` marker (tests/conftest.py).

One browser serves a whole session (starting chromium costs about a second of CPU); each test
starts from a blank page with no cookies (:func:`fresh_page`). Screenshots go to
:data:`SCREENSHOTS` (``build/screenshots/``, not committed; ``MUKAIKA_SCREENSHOTS`` moves it)
for people to look at; nothing asserts on pixels.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.selenium_manager import SeleniumManager

from tests.paths import ROOT
from tests.tools import require_tool

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(os.environ.get("MUKAIKA_SCREENSHOTS", ROOT / "build" / "screenshots"))
# A page that takes longer than this to load fails the test (a hung console, not a slow one).
PAGE_LOAD_SECONDS = 60
WINDOW = (1280, 1024)
# Chromium's own traffic to the Internet (updates, sync, field trials, QUIC probes) is off:
# the tests talk to 127.0.0.1 only.
QUIET_SWITCHES = (
    "--headless=new",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-quic",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--metrics-recording-only",
    "--password-store=basic",
    "--lang=ja-JP",
)


class SeleniumManagerCalled(AssertionError):
    """Selenium tried to find (and maybe download) a browser or a driver by itself."""


def _refuse_selenium_manager(*_args: object, **_kwargs: object) -> dict[str, str]:
    raise SeleniumManagerCalled(
        "Selenium Manager was asked for a driver: the tests must name /usr/bin/chromedriver"
    )


def chromium_options(profile: Path) -> webdriver.ChromeOptions:
    """Headless chromium in a fresh profile, Japanese first, quiet on the network."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for switch in QUIET_SWITCHES:
        options.add_argument(switch)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # chromium's sandbox refuses to run as root
    options.add_experimental_option("prefs", {"intl.accept_languages": "ja,en"})
    # An unexpected alert must not be dismissed silently: tests look for it themselves.
    options.set_capability("unhandledPromptBehavior", "ignore")
    return options


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """One headless chromium for the session (see the module docstring)."""
    require_tool(Path(CHROMIUM).name, debian_package="chromium")
    require_tool(Path(CHROMEDRIVER).name, debian_package="chromium-driver")
    if not Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc").exists():
        pytest.fail("Japanese fonts missing: Debian package fonts-noto-cjk", pytrace=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SeleniumManager, "binary_paths", _refuse_selenium_manager)
        profile = tmp_path_factory.mktemp("chromium-profile")
        service = Service(
            executable_path=CHROMEDRIVER, log_output=str(profile.parent / "driver.log")
        )
        driver = webdriver.Chrome(options=chromium_options(profile), service=service)
        try:
            driver.set_page_load_timeout(PAGE_LOAD_SECONDS)
            yield driver
        finally:
            driver.quit()


def fresh_page(driver: webdriver.Chrome) -> webdriver.Chrome:
    """The session's browser on a blank page without cookies or a pending dialog."""
    dismiss_alert(driver)
    driver.get("about:blank")
    driver.delete_all_cookies()
    return driver


def alert_text(driver: webdriver.Chrome) -> str | None:
    """The text of an open alert/confirm/prompt dialog, or None when none is open."""
    try:
        return driver.switch_to.alert.text
    except NoAlertPresentException:
        return None


def dismiss_alert(driver: webdriver.Chrome) -> None:
    try:
        driver.switch_to.alert.dismiss()
    except NoAlertPresentException:
        return


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """Save the whole page as ``SCREENSHOTS/name.png`` for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WINDOW[0], max(WINDOW[1], min(int(height), 8000)))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(*WINDOW)
    return path
