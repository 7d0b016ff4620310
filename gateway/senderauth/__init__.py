"""Reserved: sender authentication of incoming mail, SPF, DKIM, DMARC and ARC (the next
issues fill it)."""
