"""The staff directory's sources: a CSV file (:mod:`.csvfile`) or an LDAP / Active Directory
server (:mod:`.ldap`), both read into checked :class:`~gateway.store.directory.Person` records
(:mod:`.records`) that :func:`gateway.store.directory.apply_import` writes in one
transaction."""
