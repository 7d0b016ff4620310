"""Benchmarks for mukaika: pipeline, CDR, memory and the relay end to end (never run by pytest).

Each module is one command, e.g. ``.venv/bin/python -m benchmarks.pipeline``; ``make bench``
runs them all and writes ``benchmarks/results/``. See ``benchmarks/README.md``.
"""
