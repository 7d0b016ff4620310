"""Outbound mail decided in the web console, in a real browser (headless chromium), against the
real product: ``mukaika serve`` with its outbound listener and ``mukaika console`` as their own
processes, the LGWAN-side MTA and the prefecture's smarthost as recording SMTP servers
(tests/e2e/stack.py).

Issue 19's test: an outbound mail with a spreadsheet of My Numbers is held, an approver of the
sender's group approves it in the console and it arrives at the smarthost; a rejected one never
arrives and its sender gets the notice with the approver's comment; an approver of another
group can neither see nor approve it; a sender who is an approver cannot approve their own
mail where the group does not allow it; and, on a stack with a sending delay, the sender
cancels their mail from the console and it never leaves.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pyotp
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from gateway.service.totp import DRIFT_STEPS
from tests.browser import alert_text, fresh_page, screenshot
from tests.e2e.stack import WAIT_SECONDS, SinkThread, Stack, running_stack, until
from tests.gateway.relaykit import Delivered
from tests.sanitizers.document_fixtures import xlsx
from tests.storekit import quarantine_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct horse battery staple 19"
TARO = "taro@example.lg.jp"  # a sender of 総務課
KACHO = "kacho@example.lg.jp"  # 総務課's approver, also a sender of 総務課
BUCHO = "bucho@example.lg.jp"  # 企画課's approver
PARTNER = "partner@example.com"
# Valid check digits under the statutory formula (tests/sanitizers/test_personal_number.py).
NUMBERS = [621498320257, 123456789018]
GROUPS = f"""
[[outbound.groups]]
name = "総務課"
senders = ["{TARO}", "{KACHO}"]
approvers = ["{KACHO}"]

[[outbound.groups]]
name = "企画課"
senders = ["hana@example.lg.jp"]
approvers = ["{BUCHO}"]
"""


# The approvers' one-time code generators (their TOTP secrets are made when they are added),
# and the last time step each signed in with (a code is never accepted twice).
CODES: dict[str, pyotp.TOTP] = {}
USED: dict[str, int] = {}


def _code(name: str) -> str:
    """A code ``name`` has not used: the current step's, or the next one's (within the
    accepted drift); if that is used too, the next step is waited for."""
    totp = CODES[name]
    step = max(totp.timecode(datetime.now(UTC)), USED.get(name, -1) + 1)
    while step > totp.timecode(datetime.now(UTC)) + DRIFT_STEPS:
        time.sleep(1)
    USED[name] = step
    return str(totp.generate_otp(step))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("outbound-stack"), outbound=GROUPS) as stack:
        stack.user("taro", "recipient", TARO, password=PASSWORD)
        for name in (KACHO, BUCHO):
            stack.user(name, "approver", name, password=PASSWORD)
            CODES[name] = pyotp.TOTP(stack.totp_secret(name))
        yield stack


@pytest.fixture
def driver(browser: webdriver.Chrome) -> Iterator[webdriver.Chrome]:
    page = fresh_page(browser)
    yield page
    assert alert_text(page) is None


def _mail(subject: str, sender: str = TARO) -> bytes:
    message = EmailMessage()
    message["From"] = f"職員 <{sender}>"
    message["To"] = PARTNER
    message["Subject"] = subject
    message.set_content("名簿をお送りします。\n")
    sheet = xlsx([["氏名", "個人番号"], *[[f"住民{i}", n] for i, n in enumerate(NUMBERS)]])
    message.add_attachment(
        sheet,
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename="名簿.xlsx",
    )
    return message.as_bytes()


def _body(notice: Delivered) -> str:
    part = notice.parsed().get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _notices_to(stack: Stack, sender: str, subject: str) -> list[str]:
    """The texts of the notices about the mail ``subject`` its sender got so far."""
    return [
        _body(m)
        for m in stack.sink.messages
        if m.rcpt_tos == [sender] and f"件名：{subject}" in _body(m)
    ]


def _held(stack: Stack, subject: str, sender: str = TARO) -> str:
    """Send an outbound mail with My Numbers; its reference once the held notice arrived."""
    stack.send(_mail(subject, sender), sender, [PARTNER], port=stack.outbound_port)
    until(lambda: _notices_to(stack, sender, subject), "the held notice")
    (notice,) = _notices_to(stack, sender, subject)
    assert "承認者（上長）の承認を待つ" in notice
    (line,) = [line for line in notice.splitlines() if line.startswith("参照番号：")]
    return line.removeprefix("参照番号：")


def _arrived(smarthost: SinkThread | None, subject: str) -> list[Delivered]:
    assert smarthost is not None
    return [m for m in smarthost.messages if m.parsed()["Subject"] == subject]


def _state(stack: Stack, reference: str) -> str:
    with quarantine_in(stack.data_dir / "quarantine") as quarantine:
        return str(quarantine.get(reference).state)


def _audit(stack: Stack) -> list[dict[str, Any]]:
    text = (stack.data_dir / "audit" / "audit.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _text(driver: webdriver.Chrome) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


def _submit(driver: webdriver.Chrome, button: WebElement) -> None:
    """Click and wait until the next page replaced this one (as test_console_browser.py)."""
    driver.execute_script("window.mukaikaPageBeforeSubmit = true;")
    button.click()
    WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script("return window.mukaikaPageBeforeSubmit === undefined;")
    )


def _sign_in(driver: webdriver.Chrome, stack: Stack, name: str) -> None:
    fresh_page(driver)
    driver.get(stack.console_url + "/login")
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    if name in CODES:
        driver.find_element(By.NAME, "code").send_keys(_code(name))
    _submit(driver, driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]"))
    assert "ログアウト" in _text(driver), _text(driver)


def _post(driver: webdriver.Chrome, action: str, fields: dict[str, str]) -> None:
    """The POST a crafted form would make, with the page's own CSRF token."""
    token = driver.find_element(By.NAME, "csrfmiddlewaretoken").get_attribute("value")
    driver.execute_script(
        "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];"
        "for (const [k, v] of Object.entries(arguments[1])) {"
        "  const i = document.createElement('input'); i.name = k; i.value = v; f.appendChild(i);"
        "} document.body.appendChild(f); f.submit();",
        action,
        {"csrfmiddlewaretoken": token, **fields},
    )


def test_held_my_numbers_approved_in_the_console_arrive_at_the_smarthost(
    stack: Stack, driver: webdriver.Chrome
) -> None:
    subject = "住民名簿の送付"
    reference = _held(stack, subject)
    assert _state(stack, reference) == "release_requested"

    # An approver of another group: not listed, not shown, not decided.
    _sign_in(driver, stack, BUCHO)
    driver.get(stack.console_url + "/outbound")
    assert subject not in _text(driver)
    driver.get(stack.console_url + f"/outbound/{reference}")
    assert subject not in _text(driver)
    _post(driver, f"/outbound/{reference}/approve", {"comment": "他課"})
    until(lambda: "見つかりません" in _text(driver) or "404" in _text(driver), "the refusal")
    assert _state(stack, reference) == "release_requested"

    _sign_in(driver, stack, KACHO)
    driver.get(stack.console_url + "/outbound")
    assert subject in _text(driver)
    screenshot(driver, "outbound-list")
    driver.find_element(By.CSS_SELECTOR, f"#to-decide a[href='/outbound/{reference}']").click()
    assert "名簿.xlsx" in _text(driver)
    screenshot(driver, "outbound-message")
    driver.find_element(By.CSS_SELECTOR, "#approve input[name=comment]").send_keys("確認済み")
    _submit(driver, driver.find_element(By.CSS_SELECTOR, "#approve button"))
    until(lambda: _arrived(stack.smarthost, subject), "the mail at the smarthost")
    (sent,) = _arrived(stack.smarthost, subject)
    assert sent.rcpt_tos == [PARTNER]
    assert sent.mail_from == TARO
    until(lambda: len(_notices_to(stack, TARO, subject)) == 2, "the approved notice")
    assert "承認者が送信を承認" in _notices_to(stack, TARO, subject)[1]
    approvals = [
        line
        for line in _audit(stack)
        if line.get("quarantine_id") == reference and line.get("event") == "approval"
    ]
    assert [line["actor"] for line in approvals] == [KACHO]


def test_a_rejected_mail_never_arrives_and_its_sender_is_told(
    stack: Stack, driver: webdriver.Chrome
) -> None:
    subject = "宛先誤りの名簿"
    reference = _held(stack, subject)
    _sign_in(driver, stack, KACHO)
    driver.get(stack.console_url + f"/outbound/{reference}")
    driver.find_element(By.CSS_SELECTOR, "#reject input[name=comment]").send_keys(
        "宛先が誤っています"
    )
    _submit(driver, driver.find_element(By.CSS_SELECTOR, "#reject button"))
    until(lambda: len(_notices_to(stack, TARO, subject)) == 2, "the rejection notice")
    notice = _notices_to(stack, TARO, subject)[1]
    assert "承認者により送信が認められませんでした" in notice
    assert "承認者のコメント：宛先が誤っています" in notice
    assert _state(stack, reference) == "denied"
    # serve told the sender only after recording the denial: nothing was spooled to leave.
    assert _arrived(stack.smarthost, subject) == []
    assert not any(
        line.get("quarantine_id") == reference and line.get("state") == "delivered"
        for line in _audit(stack)
    )


def test_an_approver_cannot_approve_their_own_mail_unless_allowed(
    stack: Stack, driver: webdriver.Chrome
) -> None:
    subject = "課長自身の名簿"
    reference = _held(stack, subject, sender=KACHO)
    _sign_in(driver, stack, KACHO)
    driver.get(stack.console_url + f"/outbound/{reference}")
    assert subject in _text(driver)  # their own mail, shown
    assert not driver.find_elements(By.ID, "approve")
    assert "self_approval is off" in driver.find_element(By.ID, "why-not").text
    _post(driver, f"/outbound/{reference}/approve", {"comment": "自分で承認"})
    until(lambda: "self_approval is off" in _text(driver), "the refusal")
    assert _state(stack, reference) == "release_requested"
    assert _arrived(stack.smarthost, subject) == []


@pytest.fixture(scope="module")
def delayed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose outbound mail waits an hour before it is checked (送信遅延)."""
    more = "delay_seconds = 3600\n" + GROUPS
    with running_stack(tmp_path_factory.mktemp("delayed-stack"), outbound=more) as stack:
        stack.user("taro", "recipient", TARO, password=PASSWORD)
        yield stack


def test_the_sender_cancels_during_the_delay_from_the_console(
    delayed_stack: Stack, driver: webdriver.Chrome
) -> None:
    stack = delayed_stack
    subject = "取り消す予定のメール"
    stack.send(_mail(subject), TARO, [PARTNER], port=stack.outbound_port)
    _sign_in(driver, stack, "taro")
    driver.get(stack.console_url + "/outbound")  # spooled before the 250: listed at once
    assert subject in driver.find_element(By.ID, "waiting").text
    screenshot(driver, "outbound-delayed")
    _submit(driver, driver.find_element(By.CSS_SELECTOR, "#waiting button.cancel"))
    assert subject not in _text(driver)
    until(lambda: _notices_to(stack, TARO, subject), "the cancelled notice")
    assert "送信を取り消しました" in _notices_to(stack, TARO, subject)[0]
    cancelled = [line for line in _audit(stack) if line.get("error") == "cancelled"]
    assert [line["actor"] for line in cancelled] == ["taro"]
    assert _arrived(stack.smarthost, subject) == []
