"""The outbound checks as serve runs them: in a process of the sanitizer pool."""

from __future__ import annotations

from gateway.configuration.settings import ScannerSettings, SmtpSettings
from gateway.outbound.checking import check_task
from gateway.processing.pool import ProcessSanitizer
from sanitizers.policy import Policy
from sanitizers.vocabulary import Reason, Verdict

RAW = "Subject: 名簿\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n個人番号 621498320257\r\n"


async def test_the_checks_run_in_a_pool_process_and_their_report_comes_back() -> None:
    pool = ProcessSanitizer(Policy(), 1, 60.0)
    try:
        report = await pool.run_task(
            check_task,
            RAW.encode(),
            Policy(),
            ("partner@example.com", "kacho@city.example.lg.jp"),
            SmtpSettings(accept_domains=("city.example.lg.jp",)),
            ScannerSettings(),
            reference="test",
        )
    finally:
        pool.close()
    assert report.verdict is Verdict.HOLD
    assert report.reasons == [Reason.PERSONAL_NUMBER]
    assert report.outside_recipients == ("partner@example.com",)
