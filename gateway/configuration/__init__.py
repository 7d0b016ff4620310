"""Configuration: the settings, loading the TOML files, and the policy rules.

:mod:`.settings` and :mod:`.config` define and load the settings; :mod:`.rules` resolves the
policy per recipient, sender and client network."""
