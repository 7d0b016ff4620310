"""Receiving: the SMTP listener that accepts mail into the spool (:mod:`.smtp`).

A message is acknowledged only after it is durable in the spool; every refusal is a reply code
to the sending server, never a silent drop."""
