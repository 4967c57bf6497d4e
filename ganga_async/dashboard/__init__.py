"""The web dashboard the daemon serves (``ganga-async service start --dashboard``).

This package is a face beside the daemon: it reads the daemon's engine and repository and acts
through the daemon's operations (:mod:`ganga_async.service._operations`). Importing it loads
neither Starlette nor uvicorn: :mod:`._state` (where the running dashboard's URL and token are
kept) is all the command line needs; :mod:`.server` (the ``dashboard`` extra) is imported only
when a daemon is asked to serve it. See docs/dashboard.md.
"""
