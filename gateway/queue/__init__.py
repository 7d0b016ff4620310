"""The queue: the durable spool on disk and the scheduling of the work on it.

The spool (:mod:`.spool`) is the truth; the schedule is rebuilt from it on start and rescanned
periodically, so a crash at any point leaves each message where it can continue."""
