"""The console's pages, one module per subject: :mod:`.account` (sign in and out, language),
:mod:`.mail` (held and quarantined mail, the workflow's actions), :mod:`.audit` (the audit
trail), :mod:`.rules` (effective rules, explain), :mod:`.errors` and :mod:`.static`.

Every page that shows mail requires a signed-in user with a permission (:func:`.access.
requires`); every action is a POST (CSRF-checked); texts from mail go through the templates'
auto-escaping only.
"""
