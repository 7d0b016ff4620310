"""Tenants in a real browser (tests/browser.py) against the real product (tests/e2e/stack.py):
a held mail for two tenants becomes one entry per tenant, each notice reaches its own
tenant's MTA, and an operator of one tenant sees only that tenant's entry: the other's answers
"not found" by its direct URL, and its release does nothing."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser import fresh_page, screenshot
from tests.e2e.stack import WAIT_SECONDS, SinkThread, Stack, running_stack
from tests.sanitizers.cdr import encrypted_fixtures as enc

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct horse battery staple 7"
KITA, MINAMI = "taro@example.lg.jp", "hanako@minami.example.jp"
NOT_FOUND = "ページまたはメールが見つかりません"


@pytest.fixture(scope="module")
def minami_mta() -> Iterator[SinkThread]:
    sink = SinkThread()
    yield sink
    sink.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, minami_mta: SinkThread) -> Iterator[Stack]:
    def tenants(kita_port: int) -> str:
        return (
            f'[[tenants]]\nname = "kita"\ndomains = ["example.lg.jp"]\n'
            f'relay_host = "127.0.0.1"\nrelay_port = {kita_port}\n'
            f'[[tenants]]\nname = "minami"\ndomains = ["minami.example.jp"]\n'
            f'relay_host = "127.0.0.1"\nrelay_port = {minami_mta.port}\n'
        )

    with running_stack(tmp_path_factory.mktemp("tenant-stack"), tenants) as stack:
        stack.user("op-kita", "operator", password=PASSWORD, tenant="kita")
        stack.user("op-minami", "operator", password=PASSWORD, tenant="minami")
        yield stack


def _ppap_mail() -> bytes:
    message = EmailMessage()
    message["From"] = "取引先 <partner@example.com>"
    message["To"] = f"{KITA}, {MINAMI}"
    message["Subject"] = "両団体あての資料"
    message.set_content("資料をお送りします。パスワードは別途お送りします。\n")
    archive = enc.aes_zip({"連絡.txt": enc.TEXT.encode()})
    message.add_attachment(archive, maintype="application", subtype="zip", filename="資料.zip")
    return message.as_bytes()


def _sign_in(driver: webdriver.Chrome, stack: Stack, name: str) -> None:
    fresh_page(driver)
    driver.get(stack.console_url + "/login")
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "form[action='/logout']")
    )


def test_an_operator_of_one_tenant_sees_nothing_of_the_other(
    stack: Stack, minami_mta: SinkThread, browser: webdriver.Chrome
) -> None:
    stack.send(_ppap_mail(), "partner@example.com", [KITA, MINAMI])
    (kita_notice,) = stack.sink.wait_for(1)
    (minami_notice,) = minami_mta.wait_for(1)
    assert kita_notice.rcpt_tos == [KITA]
    assert minami_notice.rcpt_tos == [MINAMI]
    kita_ref = str(kita_notice.parsed()["X-Mukaika-Reference"])
    minami_ref = str(minami_notice.parsed()["X-Mukaika-Reference"])
    assert kita_ref != minami_ref

    driver = fresh_page(browser)
    _sign_in(driver, stack, "op-kita")
    listing = driver.page_source
    assert kita_ref in listing
    assert minami_ref not in listing
    screenshot(driver, "list-tenant-operator")
    driver.get(f"{stack.console_url}/mail/{minami_ref}")
    assert NOT_FOUND in driver.find_element(By.TAG_NAME, "body").text
    assert "hanako" not in driver.page_source
    driver.get(f"{stack.console_url}/mail/{kita_ref}")
    assert KITA in driver.find_element(By.TAG_NAME, "body").text

    _sign_in(driver, stack, "op-minami")
    assert minami_ref in driver.page_source
    assert kita_ref not in driver.page_source
