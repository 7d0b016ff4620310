"""mukaika's service side: SMTP in, durable spool, workers, delivery, quarantine, audit."""
