"""The console in a test's data directory: Django configured once per test process, a
runtime (store, quarantine, audit log) per test, users with passwords and TOTP secrets, held
mail stored the way the worker stores it, and a client that signs in.

The browser tests build on the same kit (a real server, the same users and mail).
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import django
import pyotp
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test import Client

from gateway.configuration.config import Config, Layered, load_layered
from gateway.console import settings as console_settings
from gateway.console.passwords import hash_password
from gateway.console.runtime import Runtime, install, open_runtime
from gateway.store.users import add_user
from sanitizers.report import Report
from sanitizers.vocabulary import MessageState, Reason, UserRole, Verdict
from tests.storekit import migrated_store

PASSWORD = "correct horse battery staple"
HOST = "localhost"
TEST_SECRET_KEY = "test-secret-key-for-the-console-tests-only-0123456789"


@functools.cache
def hashed(password: str) -> str:
    """One argon2 hash per password and test process (hashing is slow on purpose)."""
    return hash_password(password)


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2 at its cheapest, for tests only: the production cost (about 100 MB and a good
    part of a second per check) would make the lockout tests take minutes. The shipped
    settings are checked separately (test_headers.py)."""

    time_cost = 1
    memory_cost = 64
    parallelism = 1


def configure_django(config: Config | None = None) -> None:
    """Django's settings from the defaults, with a cheap hasher (the first call in a process
    wins)."""
    from django.conf import settings

    if settings.configured:
        return
    values = console_settings.django_settings(config or Config(), TEST_SECRET_KEY)
    values["PASSWORD_HASHERS"] = [
        f"{__name__}.FastArgon2PasswordHasher",
        *values["PASSWORD_HASHERS"],
    ]
    settings.configure(**values)
    django.setup(set_prefix=False)


@dataclass
class ConsoleWorld:
    runtime: Runtime
    totp_secrets: dict[str, str]

    @property
    def store(self) -> Any:
        return self.runtime.store

    def add(
        self,
        name: str,
        role: UserRole,
        *addresses: str,
        password: str = PASSWORD,
        tenant: str = "",
    ) -> None:
        """A user with a console password (and a TOTP secret when the role needs one)."""
        add_user(
            self.store,
            name,
            role,
            "test",
            password_hash=hashed(password),
            addresses=addresses,
            tenant=tenant,
        )
        if role in (UserRole.APPROVER, UserRole.ADMIN):
            from gateway.service.totp import new_secret

            self.totp_secrets[name], _ = new_secret(self.store, name)

    def code(self, name: str, offset_steps: int = 0) -> str:
        """The TOTP code of ``name`` for the current step (plus ``offset_steps``)."""
        totp = pyotp.TOTP(self.totp_secrets[name])
        return totp.generate_otp(totp.timecode(datetime.now(UTC)) + offset_steps)

    def held(
        self,
        raw: bytes,
        *,
        rcpt_to: tuple[str, ...] = ("staff@city.example.lg.jp",),
        mail_from: str = "sender@example.com",
        reasons: tuple[Reason, ...] = (Reason.MACRO,),
        subject: str | None = None,
        auth: dict[str, Any] | None = None,
        tenant: str = "",
    ) -> str:
        """Store ``raw`` as a held message (as the worker does), with what sender
        authentication found (``AuthOutcome.to_dict()``); its reference."""
        quarantine = self.runtime.quarantine
        qid = quarantine.store(
            "Q" + datetime.now(UTC).strftime("%H%M%S%f"),
            raw,
            client="192.0.2.1",
            helo="mx.example.com",
            mail_from=mail_from,
            rcpt_to=list(rcpt_to),
            received_at=datetime.now(UTC),
            tenant=tenant,
        )
        report = Report(verdict=Verdict.HOLD, reasons=list(reasons), subject=subject, auth=auth)
        quarantine.record_result(qid, report)
        quarantine.record_delivery(qid, MessageState.HELD)
        return qid

    def audit_lines(self) -> list[dict[str, Any]]:
        path = self.runtime.config.audit.resolve_path(self.runtime.data_dir)
        assert path is not None
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def client(self, *, csrf_checks: bool = False, address: str = "127.0.0.1") -> Client:
        return Client(enforce_csrf_checks=csrf_checks, HTTP_HOST=HOST, REMOTE_ADDR=address)

    def signed_in(
        self, name: str, *, csrf_checks: bool = False, address: str = "127.0.0.1"
    ) -> Client:
        """A client signed in as ``name`` (with its one-time code when it has a secret)."""
        client = self.client(csrf_checks=csrf_checks, address=address)
        form = {"name": name, "password": PASSWORD}
        if name in self.totp_secrets:
            form["code"] = self.code(name)
        if csrf_checks:
            client.get("/login")
            form["csrfmiddlewaretoken"] = client.cookies["mukaika_csrf"].value
        response = client.post("/login", form)
        assert response.status_code == 302, response.content.decode()
        return client


@contextlib.contextmanager
def console_world(data_dir: Path, config_file: Path | None = None) -> Iterator[ConsoleWorld]:
    """A migrated store in ``data_dir`` and the console's runtime on it (with the configuration
    of ``config_file``, else the defaults), installed."""
    config, layered = load_layered(config_file) if config_file else (Config(), Layered())
    configure_django(config)
    migrated_store(data_dir, settings=config.store).close()
    with open_runtime(config, layered, data_dir) as runtime:
        install(runtime)
        try:
            yield ConsoleWorld(runtime, {})
        finally:
            install(None)


def sample_mail(
    subject: str = "会議資料",
    body: str = "資料を送ります。\n",
    *,
    attachment: tuple[str, bytes] | None = None,
    to: str = "staff@city.example.lg.jp",
) -> bytes:
    """A Japanese mail (subject and file name as encoded-words, as mailers write them)."""
    from email.message import EmailMessage
    from email.policy import SMTP

    message = EmailMessage(policy=SMTP)
    message["From"] = "送信者 <sender@example.com>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = "<console-test@example.com>"
    message.set_content(body)
    if attachment is not None:
        name, data = attachment
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes()
