"""Exit codes of ``mukaika`` that other programs act on.

``EXIT_CONFIG`` (78, ``EX_CONFIG`` of sysexits.h): the configuration cannot work (invalid, or
a file it names is missing or unusable). Restarting cannot fix it, so the systemd unit lists
it in ``RestartPreventExitStatus=``; tests/deploy checks that the unit and this agree.

``EXIT_BROKEN_PIPE`` (141, what a shell reports for a program killed by SIGPIPE): whoever read
the output stopped reading (``mukaika quarantine list | head``); the command stops quietly.
"""

from __future__ import annotations

from typing import Final

EXIT_CONFIG: Final = 78
EXIT_BROKEN_PIPE: Final = 141
