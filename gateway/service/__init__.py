"""The running service: wires receiving, queue, processing, delivery, evidence and
observation together (:mod:`.assembly`, with the worker's jobs assembled in :mod:`.worker`),
plus the self-contained demo (:mod:`.demo`).

Only the command line (:mod:`gateway.cli`) and, later, the web console import this package;
both start and stop the gateway through the same functions."""
