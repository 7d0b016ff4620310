"""The console's one style sheet, served by the console itself (no other static files)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

STYLE: Final = Path(__file__).resolve().parent.parent / "static" / "console" / "console.css"


@require_GET
def stylesheet(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(STYLE.read_bytes(), content_type="text/css; charset=utf-8")
    response["Cache-Control"] = "max-age=3600"
    return response
