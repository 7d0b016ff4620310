"""The queue: the durable spool on disk (:mod:`.spool`) and the schedule of the work on it
(:mod:`.scheduler`).

The spool is the truth; the schedule is rebuilt from it on start and rescanned periodically,
so a crash at any point leaves each message where it can continue."""
