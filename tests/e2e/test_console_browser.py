"""The web console in a real browser (headless chromium, tests/browser.py) against the real
product: ``mukaika serve`` and ``mukaika console`` as their own processes on one data
directory, mail sent over SMTP and delivered to a recording MTA (tests/e2e/stack.py).

What staff do, end to end: a PPAP mail is held, the link from its notice is opened, a wrong
password refused, the right one delivers the disarmed files; a release requested by one user
and approved by another, never by the requester; a recipient cannot reach another's mail; a
form posted without its CSRF token does nothing; a subject and a file name carrying script
show as text and no dialog fires; an expired or altered link is refused; sign-in lockout is
per user behind a trusted proxy. Screenshots of the main pages (Japanese) go to
build/screenshots/ (tests/README.md).

One stack and one browser for the module: the tests run in order and each sends its own mail.
"""

from __future__ import annotations

import io
import json
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pyotp
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from gateway.configuration.secret_key import load_secret_key
from gateway.processing.unlock_links import UnlockLinks, digest_links
from tests.browser import alert_text, fresh_page, screenshot
from tests.e2e.stack import WAIT_SECONDS, Stack, mukaika, running_stack, until
from tests.gateway.relaykit import Delivered
from tests.sanitizers.cdr import encrypted_fixtures as enc
from tests.sanitizers.cdr import office_fixtures as office
from tests.storekit import quarantine_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SENDER = "partner@example.com"
RIN, REN = "rin@example.lg.jp", "ren@example.lg.jp"
PASSWORD = "correct horse battery staple 7"
XSS_SUBJECT = "<script>alert('件名')</script><img src=x onerror=alert(1)>"
XSS_FILE = '"><svg onload=alert(2)>資料.zip'
FORWARDED_FOR = "198.51.100.7"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("console-stack")) as stack:
        stack.user("rin", "recipient", RIN, password=PASSWORD)
        stack.user("ren", "recipient", REN, password=PASSWORD)
        stack.user("oto", "operator", password=PASSWORD)
        stack.user("aki", "approver", password=PASSWORD)
        stack.user("ayu", "approver", password=PASSWORD)
        yield stack


@pytest.fixture
def driver(browser: webdriver.Chrome) -> Iterator[webdriver.Chrome]:
    page = fresh_page(browser)
    yield page
    page.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
    assert alert_text(page) is None  # no dialog fired, whatever the test did


def _ppap_mail(subject: str = "資料送付の件", name: str = "資料.zip", to: str = RIN) -> bytes:
    message = EmailMessage()
    message["From"] = f"取引先 <{SENDER}>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("資料をお送りします。パスワードは別途お送りします。\n")
    archive = enc.aes_zip({"議事録.docm": office.docm_with_vba(), "連絡.txt": enc.TEXT.encode()})
    message.add_attachment(archive, maintype="application", subtype="zip", filename=name)
    return message.as_bytes()


def _held(stack: Stack, raw: bytes, recipients: list[str]) -> tuple[str, list[Delivered]]:
    """Send ``raw``; its reference and the notices (one per recipient) once they arrived."""
    before = len(stack.sink.messages)
    stack.send(raw, SENDER, recipients)
    notices = stack.sink.wait_for(before + len(recipients))[before:]
    reference = str(notices[0].parsed()["X-Mukaika-Reference"])
    until(lambda: _entry(stack, reference).state == "awaiting_password", "awaiting_password")
    return reference, notices


def _entry(stack: Stack, reference: str) -> Any:
    with quarantine_in(stack.data_dir / "quarantine") as quarantine:
        return quarantine.get(reference)


def _link_in(notice: Delivered, stack: Stack) -> str:
    part = notice.parsed().get_body(("plain",))
    assert part is not None
    text = str(part.get_content())
    (link,) = [line for line in text.splitlines() if line.startswith(stack.console_url + "/ppap/")]
    return link


def _audit(stack: Stack) -> list[dict[str, Any]]:
    text = (stack.data_dir / "audit" / "audit.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _delivered(stack: Stack, reference: str) -> list[Delivered]:
    """The sanitized mail delivered for held message ``reference`` (not its notices)."""
    return [
        message
        for message in stack.sink.messages
        if message.parsed()["X-Mukaika-Reference"] == reference
        and message.parsed()["X-Mukaika-Verdict"] == "deliver"
    ]


def _text(driver: webdriver.Chrome) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


def _submit(driver: webdriver.Chrome, button: WebElement) -> None:
    """Click a form's button and wait until the next page has replaced this one (a mark left
    in this page's window is gone; asking while the page is being replaced may fail, with a
    stale or a detached node, and is asked again)."""
    driver.execute_script("window.mukaikaPageBeforeSubmit = true;")
    button.click()
    WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script("return window.mukaikaPageBeforeSubmit === undefined;")
    )


def _sign_in(driver: webdriver.Chrome, stack: Stack, name: str, code: str = "") -> None:
    """Sign in as ``name``, signed out first (the console's cookies are dropped)."""
    fresh_page(driver)
    driver.get(stack.console_url + "/login")
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    if code:
        driver.find_element(By.NAME, "code").send_keys(code)
    _submit(driver, driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]"))


def _give(driver: webdriver.Chrome, password: str) -> str:
    driver.find_element(By.ID, "ppap-password").send_keys(password)
    _submit(driver, driver.find_element(By.ID, "ppap-submit"))
    results = driver.find_elements(By.ID, "ppap-result")
    assert results, _text(driver)
    return str(results[0].text)


def test_ppap_link_from_the_notice_wrong_then_right_password(
    stack: Stack, driver: webdriver.Chrome
) -> None:
    reference, notices = _held(stack, _ppap_mail(to=f"{RIN}, {REN}"), [RIN, REN])
    (mine,) = [notice for notice in notices if notice.rcpt_tos == [RIN]]
    link = _link_in(mine, stack)

    driver.get(link)
    assert driver.find_element(By.TAG_NAME, "h1").text == "保留中のメールのパスワード"
    assert driver.find_element(By.ID, "ppap-subject").text == "資料送付の件"
    screenshot(driver, "ppap-1-form")
    driver.get(link)  # fetching the link (twice) changes nothing
    assert _entry(stack, reference).unlock_attempts == 0
    assert not [
        line
        for line in _audit(stack)
        if line.get("quarantine_id") == reference and line.get("event") == "unlock_attempt"
    ]

    assert _give(driver, "wrong-guess").startswith("パスワードが違います")
    assert "残り 4 回" in _text(driver)
    screenshot(driver, "ppap-2-wrong-password")
    assert _entry(stack, reference).unlock_attempts == 1

    assert _give(driver, enc.PASSWORD) == "解除しました（無害化して元の宛先へ配送します）"
    screenshot(driver, "ppap-3-unlocked")
    until(lambda: _delivered(stack, reference), "the unlocked mail")
    (delivered,) = _delivered(stack, reference)
    assert sorted(delivered.rcpt_tos) == sorted([RIN, REN])  # every recipient of the original
    (attachment,) = list(delivered.parsed().iter_attachments())
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        assert sorted(archive.namelist()) == ["議事録.docx", "連絡.txt"]  # the macro file disarmed
    attempts = [
        (line["actor"], line["outcome"])
        for line in _audit(stack)
        if line.get("event") == "unlock_attempt" and line.get("quarantine_id") == reference
    ]
    assert attempts == [(f"link:{RIN}", "wrong_password"), (f"link:{RIN}", "unlocked")]
    for line in _audit(stack):
        assert "wrong-guess" not in json.dumps(line)
        assert enc.PASSWORD not in json.dumps(line)


def test_expired_altered_and_foreign_links_are_refused(
    stack: Stack, driver: webdriver.Chrome
) -> None:
    reference, (notice,) = _held(stack, _ppap_mail(), [RIN])
    link = _link_in(notice, stack)
    key = load_secret_key(stack.data_dir / "secret_key")
    public_url = stack.console_url + "/"
    yesterday = UnlockLinks(key, public_url, 3600, clock=lambda: time.time() - 86400)
    expired, _ = yesterday.sign(reference, RIN)
    driver.get(expired)
    assert "有効期限が切れています" in _text(driver)
    assert not driver.find_elements(By.ID, "ppap-password")
    screenshot(driver, "ppap-4-expired-link")

    body, signature = link.rsplit(".", 1)
    altered = body + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    foreign, _ = UnlockLinks(key, public_url, 3600).sign(reference, REN)  # not a recipient
    for url in (altered, foreign, stack.console_url + "/ppap/not-a-link"):
        driver.get(url)
        assert "このリンクは無効です" in _text(driver)
        assert not driver.find_elements(By.ID, "ppap-password")
    assert _entry(stack, reference).unlock_attempts == 0


def test_a_recipient_cannot_reach_anothers_mail(stack: Stack, driver: webdriver.Chrome) -> None:
    reference, _ = _held(stack, _ppap_mail(subject="りんさん宛て"), [RIN])
    _sign_in(driver, stack, "ren")
    assert "りんさん宛て" not in _text(driver)
    screenshot(driver, "list-recipient")
    for path in (f"/mail/{reference}", f"/ppap/mail/{reference}"):
        driver.get(stack.console_url + path)
        assert "ページまたはメールが見つかりません" in _text(driver)
        assert "りんさん宛て" not in driver.page_source
    _sign_in(driver, stack, "rin")
    assert "りんさん宛て" in _text(driver)
    driver.get(stack.console_url + f"/mail/{reference}")
    screenshot(driver, "message-recipient")
    driver.find_element(By.ID, "give-password").click()
    assert driver.find_element(By.ID, "ppap-subject").text == "りんさん宛て"


def test_a_post_without_its_csrf_token_does_nothing(stack: Stack, driver: webdriver.Chrome) -> None:
    reference, _ = _held(stack, _ppap_mail(subject="CSRF の確認"), [RIN])
    _sign_in(driver, stack, "oto")
    driver.get(stack.console_url + f"/mail/{reference}")
    screenshot(driver, "message-operator")
    driver.execute_script(
        "const form = document.querySelector(\"form[action$='/release']\");"
        "form.querySelectorAll(\"input[name='csrfmiddlewaretoken']\").forEach(i => i.remove());"
        "form.submit();"
    )
    until(lambda: "セキュリティトークン" in _text(driver), "the CSRF refusal page")
    assert _entry(stack, reference).state == "awaiting_password"
    assert not [
        line
        for line in _audit(stack)
        if line.get("quarantine_id") == reference and line.get("event") == "release"
    ]


def test_script_in_a_subject_and_a_file_name_is_shown_as_text(
    stack: Stack, driver: webdriver.Chrome
) -> None:
    reference, _ = _held(stack, _ppap_mail(subject=XSS_SUBJECT, name=XSS_FILE), [RIN])
    _sign_in(driver, stack, "rin")
    for path, shot in (
        ("/", "list-xss"),
        (f"/mail/{reference}", "message-xss"),
        (f"/ppap/mail/{reference}", None),
    ):
        driver.get(stack.console_url + path)
        assert alert_text(driver) is None
        assert XSS_SUBJECT in _text(driver)
        assert not driver.find_elements(By.XPATH, "//*[@onerror or @onload]")
        assert not driver.find_elements(By.XPATH, "//main//script | //main//svg | //main//img")
        if shot:
            screenshot(driver, shot)
    driver.get(stack.console_url + f"/mail/{reference}")
    assert "資料.zip" in _text(driver)
    assert XSS_FILE.split("資料")[0] in _text(driver)


def test_request_and_approval_by_two_users_never_ones_own(
    stack: Stack, driver: webdriver.Chrome
) -> None:
    reference, _ = _held(stack, _ppap_mail(subject="承認の確認"), [RIN])
    codes = {name: pyotp.TOTP(stack.totp_secret(name)) for name in ("aki", "ayu")}
    _sign_in(driver, stack, "aki", codes["aki"].now())
    driver.get(stack.console_url + f"/mail/{reference}")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/request'] input[name=reason]").send_keys(
        "取引先に確認済み"
    )
    _submit(driver, driver.find_element(By.CSS_SELECTOR, "form[action$='/request'] button"))
    assert not driver.find_elements(By.CSS_SELECTOR, "form[action$='/approve']")  # not for aki
    screenshot(driver, "message-requested")
    token = driver.find_element(By.NAME, "csrfmiddlewaretoken").get_attribute("value")
    driver.execute_script(  # the approval a crafted form would post: refused all the same
        "const f = document.createElement('form'); f.method = 'post';"
        "f.action = arguments[0]; const i = document.createElement('input');"
        "i.name = 'csrfmiddlewaretoken'; i.value = arguments[1]; f.appendChild(i);"
        "document.body.appendChild(f); f.submit();",
        f"/mail/{reference}/approve",
        token,
    )
    until(lambda: "another approver" in _text(driver) or "別の承認者" in _text(driver), "refusal")
    assert _entry(stack, reference).state == "release_requested"

    _sign_in(driver, stack, "ayu", codes["ayu"].now())
    driver.get(stack.console_url + f"/mail/{reference}")
    _submit(driver, driver.find_element(By.CSS_SELECTOR, "form[action$='/approve'] button"))
    until(lambda: _entry(stack, reference).state in ("released", "delivered"), "the release")
    screenshot(driver, "message-approved")
    decided = [
        (line["event"], line["actor"])
        for line in _audit(stack)
        if line.get("quarantine_id") == reference and line.get("event") in ("request", "approval")
    ]
    assert decided == [("request", "aki"), ("approval", "ayu")]


DIGEST_SUBJECT = "[mukaika] 保留メールのお知らせ（"


def _digest_to(stack: Stack, address: str) -> str:
    """The text of the digest ``mukaika digest send`` delivers to ``address`` now."""
    before = len(stack.sink.messages)
    done = mukaika("digest", "send", "--config", str(stack.config))
    assert done.returncode == 0, done.stderr

    def digests() -> list[Delivered]:
        return [
            m
            for m in stack.sink.messages[before:]
            if m.rcpt_tos == [address] and str(m.parsed()["Subject"]).startswith(DIGEST_SUBJECT)
        ]

    until(digests, "the digest")
    (digest,) = digests()
    body = digest.parsed().get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _digest_link(text: str, stack: Stack, reference: str) -> str:
    """The link of ``reference`` among a digest's links (each names its message)."""
    key = load_secret_key(stack.data_dir / "secret_key")
    links = digest_links(key, stack.console_url + "/", 3600)
    found = [
        line.split("確認：", 1)[1] for line in text.splitlines() if line.startswith("   確認：")
    ]
    (link,) = [url for url in found if links.verify(url.rsplit("/", 1)[1]).reference == reference]
    return link


def _requests_of(stack: Stack, reference: str) -> list[dict[str, Any]]:
    return [
        line
        for line in _audit(stack)
        if line.get("quarantine_id") == reference and line.get("event") == "request"
    ]


def test_a_digest_link_opens_the_page_and_only_its_recipient_asks_for_release(
    stack: Stack, driver: webdriver.Chrome
) -> None:
    reference, _ = _held(stack, _ppap_mail(subject="ダイジェストの確認"), [RIN])
    text = _digest_to(stack, RIN)
    assert "リンクを開いただけでは、メールは配送されません。" in text.splitlines()
    assert any(line.endswith(". 件名：ダイジェストの確認") for line in text.splitlines())
    link = _digest_link(text, stack, reference)
    assert link.startswith(stack.console_url + "/digest/")

    # A link scanner fetches it: the sign-in page, nothing else.
    with urllib.request.urlopen(link, timeout=30) as fetched:
        assert fetched.url.startswith(stack.console_url + "/login?next=%2Fdigest%2F")
    assert _entry(stack, reference).state == "awaiting_password"
    assert _requests_of(stack, reference) == []

    # The digest forwarded to a colleague: they sign in as themselves and cannot use it.
    _sign_in(driver, stack, "ren")
    driver.get(link)
    assert "このリンクは別の宛先のダイジェストのものです。" in _text(driver)
    assert not driver.find_elements(By.ID, "ask-release")
    screenshot(driver, "digest-forwarded")

    # Expired and altered links are refused.
    key = load_secret_key(stack.data_dir / "secret_key")
    old = digest_links(key, stack.console_url + "/", 3600, lambda: time.time() - 7200)
    expired, _ = old.sign(reference, RIN)
    body, signature = link.rsplit(".", 1)
    altered = body + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    _sign_in(driver, stack, "rin")
    driver.get(expired)
    assert "このリンクは有効期限が切れています。保留メールの一覧から開いてください。" in _text(
        driver
    )
    driver.get(altered)
    assert "このリンクは無効です。ダイジェストの行全体をコピーしてください。" in _text(driver)

    # The recipient opens it signed out: the sign-in page, then the message, and asks.
    fresh_page(driver)
    driver.get(link)
    assert "/login?next=" in driver.current_url
    driver.find_element(By.NAME, "name").send_keys("rin")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    _submit(driver, driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]"))
    assert driver.current_url == f"{stack.console_url}/mail/{reference}"
    assert _entry(stack, reference).state == "awaiting_password"  # landing asked for nothing
    screenshot(driver, "digest-landing")
    form = driver.find_element(By.ID, "ask-release")
    form.find_element(By.NAME, "reason").send_keys("取引先からの資料です")
    _submit(driver, form.find_element(By.TAG_NAME, "button"))
    until(lambda: _entry(stack, reference).state == "release_requested", "the request")
    assert [line["actor"] for line in _requests_of(stack, reference)] == ["rin"]

    # An approver decides; serve carries it out and tells rin by mail.
    before = len(stack.sink.messages)
    _sign_in(driver, stack, "ayu", pyotp.TOTP(stack.totp_secret("ayu")).now())
    driver.get(stack.console_url + f"/mail/{reference}")
    _submit(driver, driver.find_element(By.CSS_SELECTOR, "form[action$='/approve'] button"))
    notice_subject = "[mukaika] 受信許可の申請：承認 / Release request approved"
    until(
        lambda: any(
            str(m.parsed()["Subject"]) == notice_subject for m in stack.sink.messages[before:]
        ),
        "the notice to the requester",
    )
    (notice,) = [
        m for m in stack.sink.messages[before:] if str(m.parsed()["Subject"]) == notice_subject
    ]
    assert notice.rcpt_tos == [RIN]
    notice_body = notice.parsed().get_body(("plain",))
    assert notice_body is not None
    notice_text = str(notice_body.get_content()).splitlines()
    assert notice_text[0] == (
        "保留されていたメールの受信許可の申請が承認されました。メールは無害化し直して配送されます。"
    )
    assert "申請理由：取引先からの資料です" in notice_text


def test_the_statistics_page_for_operators(stack: Stack, driver: webdriver.Chrome) -> None:
    _sign_in(driver, stack, "oto")
    driver.find_element(By.LINK_TEXT, "統計").click()
    assert driver.find_element(By.TAG_NAME, "h1").text == "統計"
    received = int(driver.find_element(By.ID, "messages").text)
    assert received >= 1  # the module's mail of today
    assert int(driver.find_element(By.ID, "backlog").text) >= 1
    screenshot(driver, "statistics")
    _sign_in(driver, stack, "rin")
    assert not driver.find_elements(By.LINK_TEXT, "統計")
    driver.get(stack.console_url + "/statistics")
    assert "このページを開く権限がありません。" in _text(driver)


def test_sign_in_lockout_is_per_user_behind_a_trusted_proxy(
    stack: Stack, driver: webdriver.Chrome
) -> None:
    # Every request arrives from the screen-transfer server (127.0.0.1, trusted), which
    # forwards the staff member's address.
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"X-Forwarded-For": FORWARDED_FOR}}
    )
    for _ in range(5):  # [console] max_failures_per_user
        driver.get(stack.console_url + "/login")
        driver.find_element(By.NAME, "name").send_keys("ren")
        driver.find_element(By.NAME, "password").send_keys("not the password")
        _submit(driver, driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]"))
    assert "しばらくログインできません" in _text(driver)
    screenshot(driver, "login-locked")
    _sign_in(driver, stack, "ren")  # the right password, while locked: refused
    assert "しばらくログインできません" in _text(driver)
    _sign_in(driver, stack, "rin")  # another user from the same address signs in
    assert "保留メール" in _text(driver)
    logins = [line for line in _audit(stack) if line.get("event") == "login"]
    assert {line["client"] for line in logins[-7:]} == {FORWARDED_FOR}
