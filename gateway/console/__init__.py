"""The web console (``mukaika console``): operators, approvers, auditors and recipients in a
browser, on top of the same service functions as the command line.

Django provides what must not be written by hand here: CSRF protection, the security and
clickjacking headers, signed session keys, password hashing (argon2), template auto-escaping and
translations. No Django model exists: the store (:mod:`gateway.store`, SQLAlchemy and Alembic)
is the one schema; the session backend (:mod:`.sessions`) and the sign-in (:mod:`.signin`)
keep their rows there. The parts: :mod:`.runtime` (the open store, audit log and workflow of
this process), :mod:`.settings` (Django's settings from mukaika's configuration),
:mod:`.middleware` (headers, language, who is signed in), :mod:`.views` (the pages),
:mod:`.server` (uvicorn: TLS from files, trusted proxies).
"""
