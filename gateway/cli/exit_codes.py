"""Exit codes of ``mukaika`` that other programs act on.

``EXIT_CONFIG`` (78, ``EX_CONFIG`` of sysexits.h): the configuration cannot work (invalid, or
a file it names is missing or unusable). Restarting cannot fix it, so the systemd unit lists
it in ``RestartPreventExitStatus=``; tests/deploy checks that the unit and this agree.
"""

from __future__ import annotations

from typing import Final

EXIT_CONFIG: Final = 78
