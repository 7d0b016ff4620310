"""Content disarm and reconstruction (CDR): where attachments are rebuilt without danger.

The pipeline talks to CDR only through a :class:`Disarmer`. The shipped one before any
sanitizer exists removes every attachment; :mod:`sanitizers.cdr.isolation` provides the one
that runs sanitizers in separate, limited processes.
"""
