"""Delivery: handing sanitized mail to the next hop, retrying, and bouncing.

:mod:`.client` speaks SMTP to the relay; :mod:`.notices` builds delivery-status notices and the
content-free notice for a held message."""
