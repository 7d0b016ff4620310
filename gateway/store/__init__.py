"""Reserved: the database layer (the next issues fill it).

It stores and queries what the web console and the operator need. It never imports a web
framework: the console depends on the store, never the other way round."""
