"""Django's settings, built from mukaika's configuration (``[console]`` and the rest): Django
never reads a settings module of its own, so every value has one source, the settings model.

Security choices (threat model: the console faces the Internet segment; staff arrive through
screen transfer or a reverse proxy):

- Cookies: HttpOnly, ``SameSite=Strict`` for the session, ``Lax`` for the CSRF and language
  cookies, ``Secure`` whenever the browser reaches the console over HTTPS (the console's own
  TLS, or a ``public_url`` that starts with https:// behind a proxy).
- CSRF on every POST (Django's middleware, trusted origin = ``public_url``); nothing changes
  state on GET (the views accept POST for every action).
- Headers: the security middleware (nosniff, referrer policy, cross-origin opener policy, HSTS
  over HTTPS), clickjacking denied (``X-Frame-Options: DENY``) and a Content-Security-Policy
  without inline script or style and ``frame-ancestors 'none'`` (:mod:`.middleware`).
- Passwords: Django's hashers with Argon2 first (argon2-cffi).
- Sessions: in the store (:mod:`.sessions`), ended after ``session_idle_seconds`` without a
  request and ``session_max_seconds`` after sign-in.
- Uploads: in memory only, at most the largest message the gateway accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from gateway.configuration.config import Config
from gateway.configuration.settings import split_listen
from gateway.console.passwords import PASSWORD_HASHERS

HERE: Final = Path(__file__).resolve().parent
LANGUAGES: Final = (("ja", "日本語"), ("en", "English"))
DEFAULT_LANGUAGE: Final = "ja"
# Form fields of the largest form (the explain page's) and of a request without files.
MAX_FIELDS: Final = 200
MAX_FORM_BYTES: Final = 1024 * 1024


def behind_https(config: Config) -> bool:
    """Whether browsers reach the console over HTTPS."""
    return config.console.https or config.console.public_url.startswith("https://")


def allowed_hosts(config: Config) -> list[str]:
    """The Host names the console answers to: public_url's, the listen address, loopback."""
    hosts = {"localhost", "127.0.0.1", "[::1]", split_listen(config.console.listen)[0]}
    public = urlsplit(config.console.public_url).hostname
    if public:
        hosts.add(public)
    return sorted(hosts)


def django_settings(config: Config, secret_key: str) -> dict[str, Any]:
    """The keyword arguments of ``django.conf.settings.configure``."""
    console = config.console
    secure = behind_https(config)
    origins = []
    if console.public_url:
        parts = urlsplit(console.public_url)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    max_upload = config.policy.limits.max_message_bytes
    return {
        "DEBUG": False,
        "SECRET_KEY": secret_key,
        "ALLOWED_HOSTS": allowed_hosts(config),
        "ROOT_URLCONF": "gateway.console.urls",
        "INSTALLED_APPS": [],
        "DATABASES": {},
        "MIDDLEWARE": [
            "django.middleware.security.SecurityMiddleware",
            "gateway.console.middleware.content_security_policy",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "gateway.console.middleware.language",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "gateway.console.middleware.signed_in_user",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [str(HERE / "templates")],
                "APP_DIRS": False,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.csrf",
                        "django.template.context_processors.request",
                        "django.template.context_processors.i18n",
                        "gateway.console.middleware.page_context",
                    ],
                    "builtins": ["gateway.console.labels"],
                    "string_if_invalid": "",
                    "autoescape": True,
                },
            }
        ],
        "USE_I18N": True,
        "USE_TZ": True,
        "TIME_ZONE": config.service.display_timezone or "Asia/Tokyo",
        "LANGUAGE_CODE": DEFAULT_LANGUAGE,
        "LANGUAGES": list(LANGUAGES),
        "LOCALE_PATHS": [str(HERE / "locale")],
        "LANGUAGE_COOKIE_SECURE": secure,
        "LANGUAGE_COOKIE_HTTPONLY": True,
        "LANGUAGE_COOKIE_SAMESITE": "Lax",
        "SESSION_ENGINE": "gateway.console.sessions",
        "SESSION_COOKIE_NAME": "mukaika_session",
        "SESSION_COOKIE_AGE": int(console.session_idle_seconds),
        "SESSION_SAVE_EVERY_REQUEST": True,
        "SESSION_EXPIRE_AT_BROWSER_CLOSE": True,
        "SESSION_COOKIE_SECURE": secure,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Strict",
        "SESSION_SERIALIZER": "django.contrib.sessions.serializers.JSONSerializer",
        "CSRF_COOKIE_NAME": "mukaika_csrf",
        "CSRF_COOKIE_SECURE": secure,
        "CSRF_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SAMESITE": "Lax",
        "CSRF_TRUSTED_ORIGINS": origins,
        "CSRF_FAILURE_VIEW": "gateway.console.views.errors.csrf_failure",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "no-referrer",
        "SECURE_CROSS_ORIGIN_OPENER_POLICY": "same-origin",
        "SECURE_HSTS_SECONDS": 31536000 if secure else 0,
        "X_FRAME_OPTIONS": "DENY",
        "PASSWORD_HASHERS": PASSWORD_HASHERS,
        "FILE_UPLOAD_HANDLERS": ["django.core.files.uploadhandler.MemoryFileUploadHandler"],
        "FILE_UPLOAD_MAX_MEMORY_SIZE": max_upload,
        "DATA_UPLOAD_MAX_MEMORY_SIZE": MAX_FORM_BYTES,
        "DATA_UPLOAD_MAX_NUMBER_FIELDS": MAX_FIELDS,
        "DATA_UPLOAD_MAX_NUMBER_FILES": 1,
        "LOGGING_CONFIG": None,
        "APPEND_SLASH": False,
        "DEFAULT_CHARSET": "utf-8",
    }


def configure(config: Config, secret_key: str) -> None:
    """Configure Django for this process (once) and set its apps up."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(**django_settings(config, secret_key))
        django.setup(set_prefix=False)
