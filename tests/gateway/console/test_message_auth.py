"""The message page shows what sender authentication found when the message arrived (our
evaluation, kept with the original), never the claims of headers in the mail, and renders the
text as a release would: with the spoofing warning at the top."""

from __future__ import annotations

import html

from sanitizers.senderauth import AuthAction, AuthOutcome, MethodResult
from sanitizers.vocabulary import Reason
from tests.gateway.console.consolekit import ConsoleWorld, sample_mail

FORGED = AuthOutcome(
    "gw.test",
    (
        MethodResult("spf", "fail", (("smtp.mailfrom", "ceo@quarantined.co.jp"),)),
        MethodResult("dmarc", "fail", (("header.from", "quarantined.co.jp"),), "p=quarantine"),
    ),
    AuthAction.HOLD,
    (Reason.DMARC_QUARANTINE,),
)


def test_the_page_shows_our_evaluation_and_the_warning(world: ConsoleWorld) -> None:
    # The mail claims a pass of its own: shown among its headers, never as our result.
    raw = b"Authentication-Results: gw.test; dmarc=pass\r\n" + sample_mail("請求書")
    ref = world.held(raw, reasons=(Reason.DMARC_QUARANTINE,), auth=FORGED.to_dict())
    page = world.signed_in("oto").get(f"/mail/{ref}").content.decode()
    ours = page[page.index("送信者認証") : page.index("ヘッダー")]
    assert "<code>gw.test</code>" in ours
    assert "<td>dmarc</td><td>fail</td>" in ours
    assert "header.from=quarantined.co.jp (p=quarantine)" in ours
    assert "dmarc=pass" not in ours
    text = html.unescape(page[page.index('<pre class="text">') :])
    assert text.index("なりすまし") < text.index("資料を送ります")


def test_a_message_evaluated_by_nobody_has_no_such_section(world: ConsoleWorld) -> None:
    ref = world.held(sample_mail("会議資料"))
    page = world.signed_in("oto").get(f"/mail/{ref}").content.decode()
    assert "送信者認証" not in page
    assert "なりすまし" not in page


def test_values_from_dns_and_the_message_are_escaped(world: ConsoleWorld) -> None:
    hostile = AuthOutcome(
        "gw.test",
        (MethodResult("dkim", "fail", (("header.d", "<script>alert(1)</script>"),)),),
    )
    ref = world.held(sample_mail("x"), auth=hostile.to_dict())
    page = world.signed_in("oto").get(f"/mail/{ref}").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
