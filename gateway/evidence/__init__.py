"""Evidence: what the gateway keeps to show what it did.

:mod:`.quarantine` keeps every original as it came in (tamper-evident, purged after its
retention); :mod:`.audit` writes one line per message, built by :mod:`.message_record`;
:mod:`.ports` are the shapes the worker needs from them."""
