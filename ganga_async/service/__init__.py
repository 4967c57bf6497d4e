"""ganga-async as a service: a daemon per gangadir, and clients to drive it from any program.

::

    ganga-async service start            # or: service start --foreground, for systemd
    ganga-async submit job.toml          # returns at once; the daemon monitors

    from ganga_async.service import GangaService
    gs = GangaService()
    print(gs.send_cmd("j = Job()\\nj.submit()\\nprint(j.id)"))

See :mod:`ganga_async.service.server` for the daemon, :mod:`ganga_async.service.client` for the
clients and :mod:`ganga_async.service._protocol` for the messages on the wire.
"""

from .client import AsyncGangaService, Command, GangaService, JobDescription, Subscription

__all__ = ["AsyncGangaService", "Command", "GangaService", "JobDescription", "Subscription"]
