"""Sender authentication of incoming mail: SPF, DKIM, DMARC and ARC over one DNS resolver,
evaluated before the 250 (:mod:`.evaluate`), and the DMARC aggregate reports (:mod:`.reports`)."""
