"""The console while its database is down: a 503 page in Japanese that says so (no stack
trace, no detail), and the pages back by themselves once the database is, without a restart."""

from __future__ import annotations

from pathlib import Path

from gateway.console.views.errors import STORE_DOWN_RETRY_SECONDS
from sanitizers.vocabulary import UserRole
from tests.gateway.console.consolekit import console_world
from tests.postgres import Cluster

DOWN = "データベースに接続できないため、このページを表示できません。"


def test_the_database_down_is_a_503_page_and_the_console_recovers_by_itself(
    tmp_path: Path, postgres_url: str, postgres_cluster: Cluster
) -> None:
    config = tmp_path / "mukaika.toml"
    config.write_text(f'[store]\nurl = "{postgres_url}"\nconnect_timeout_seconds = 2\n')
    with console_world(tmp_path / "data", config) as world:
        world.add("oto", UserRole.OPERATOR)
        reference = world.held(b"Subject: x\r\n\r\nbody\r\n", subject="見積書")
        client = world.signed_in("oto")
        assert client.get("/").status_code == 200
        client.raise_request_exception = False  # as the server answers, not re-raised
        postgres_cluster.stop()
        try:
            for page in ("/", f"/mail/{reference}"):
                response = client.get(page)
                body = response.content.decode()
                assert response.status_code == 503
                assert response.headers["Retry-After"] == str(STORE_DOWN_RETRY_SECONDS)
                assert DOWN in body
                assert "Traceback" not in body
                assert "postgresql" not in body.lower()
                assert "見積書" not in body
        finally:
            postgres_cluster.start()
        # Back by itself: the same session, no restart of the console.
        response = client.get("/")
        assert response.status_code == 200
        assert "見積書" in response.content.decode()


def test_any_other_fault_is_a_500_page_without_detail(tmp_path: Path) -> None:
    with console_world(tmp_path / "data") as world:
        world.add("oto", UserRole.OPERATOR)
        client = world.signed_in("oto")
        client.raise_request_exception = False
        world.runtime.quarantine.index.search = None  # type: ignore[assignment,method-assign]
        response = client.get("/")
        assert response.status_code == 500
        assert "サーバーで問題が発生しました。" in response.content.decode()
        assert "Traceback" not in response.content.decode()
