"""Observation: the Prometheus metrics the gateway exports (:mod:`.metrics`) and the
shape the worker needs from them (:mod:`.ports`)."""
