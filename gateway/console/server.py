"""Running the console: Django's ASGI application served by uvicorn.

uvicorn (BSD) is chosen over gunicorn because it does both things the console needs without
code of ours: HTTPS from the configured certificate and key files, and trusted proxy headers
(its proxy-headers middleware believes X-Forwarded-For and X-Forwarded-Proto only from the
addresses or networks in ``[console] trusted_proxies``, and then takes the client address from
the right-most untrusted hop); gunicorn would leave the client address to the application.
Without trusted proxies the headers are ignored. Plain HTTP is refused by the configuration
on anything but loopback (:class:`gateway.configuration.settings.ConsoleSettings`).

Django's views are synchronous: they run in the ASGI handler's thread and block nothing of the
server's event loop, which only reads and writes sockets.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gateway.configuration.config import Config, Layered
from gateway.configuration.secret_key import load_secret_key, secret_key_path
from gateway.configuration.settings import split_listen
from gateway.console import settings
from gateway.console.runtime import install, open_runtime

log = logging.getLogger("mukaika.console")


def run(config: Config, layered: Layered, data_dir: Path) -> None:
    """Serve the console until SIGINT or SIGTERM. Raises the secret key's, the store's and
    the quarantine's errors before listening."""
    import uvicorn

    console = config.console
    secret_key = load_secret_key(secret_key_path(console.secret_key_file, data_dir))
    settings.configure(config, secret_key)
    from django.core.asgi import get_asgi_application

    host, port = split_listen(console.listen)
    with open_runtime(config, layered, data_dir) as runtime:
        install(runtime)
        try:
            application = get_asgi_application()
            uvicorn.run(
                application,
                host=host,
                port=port,
                ssl_certfile=console.tls_cert_file or None,
                ssl_keyfile=console.tls_key_file or None,
                proxy_headers=bool(console.trusted_proxies),
                forwarded_allow_ips=list(console.trusted_proxies) or None,
                lifespan="off",
                server_header=False,
                log_config=None,
                access_log=False,
            )
        finally:
            install(None)
