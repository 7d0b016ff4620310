"""Processing: sanitizing a spooled message in the process pool, with virus scanning.

:mod:`.sanitizing` quarantines the original, splits by policy and hands the message to the
pool; :mod:`.pool` runs :mod:`sanitizers` in separate processes (a crash or a timeout costs one
message, not the gateway); :mod:`.sanitize_task` picks what runs there; :mod:`.scanner` wires
clamd in front of CDR."""
