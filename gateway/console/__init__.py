"""Reserved: the web console for operators (the next issues fill it).

It calls the same service functions as the command line (:mod:`gateway.service`) and reads
through :mod:`gateway.store`."""
