"""Reserved: the outbound direction, mail from the municipality to the internet (the next
issues fill it)."""
