"""Who is acting: the person who runs a ``mukaika`` command.

The command line has no logins (the web console adds them). It acts as the operating-system
account that runs it; when that account was reached through ``sudo`` (the guides run every
command as ``sudo -u mukaika``, the service's user, because the store is private to it), it acts
as the login sudo records for the person who called it (``SUDO_USER``). That name must be a user
of the workflow (``mukaika user add``) with the role the action needs.

Threat model: this identifies people who can already run commands as the service's user; such a
person can also write the store directly, so the separation of duties it gives is as strong as
the sudo rules that say who may become that user. It keeps honest operators from approving their
own requests and records who did what; it is not an authentication against them.
"""

from __future__ import annotations

import os
import pwd


def acting_user() -> str:
    """The name of the person running this command (see the module docstring)."""
    uid = os.getuid()
    sudo_user = os.environ.get("SUDO_USER", "")
    sudo_uid = os.environ.get("SUDO_UID", "")
    if sudo_user and sudo_uid.isdigit() and int(sudo_uid) != uid:
        return sudo_user
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid-{uid}"
