"""Delivery: handing sanitized mail to the next hop, retrying, and bouncing.

:mod:`.attempts` makes one delivery attempt and schedules the retry; :mod:`.client` speaks
SMTP to the relay; :mod:`.bounces` dead-letters what cannot be delivered and sends the
delivery-status notices that :mod:`.notices` builds."""
