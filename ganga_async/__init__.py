"""ganga-async: asynchronous job orchestration in the line of CERN's Ganga.

The async API::

    from ganga_async import Engine, Job, Executable, ArgSplitter, Local

    async with Engine(gangadir=path) as engine:
        job = Job(application=Executable(exe="/bin/echo"), backend=Local(),
                  splitter=ArgSplitter(args=[[str(i)] for i in range(1000)]))
        await engine.submit(job)
        await engine.wait(job)

The plain-Python interface (Ganga's GPI) is :mod:`ganga_async.gpi`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _plugins
from ._exceptions import (
    BackendError,
    BackendUnavailableError,
    BoxEntryNotFoundError,
    ConfigError,
    CredentialError,
    EngineClosedError,
    GangaAsyncError,
    JobNotFoundError,
    JobSpecError,
    JobStateError,
    PluginError,
    PostProcessError,
    RenewalError,
    RepositoryError,
    RepositoryLockedError,
    SchemaVersionError,
    ShareDirError,
    WaitTimeoutError,
)
from ._version import __version__ as __version__
from .states import Status

if TYPE_CHECKING:
    from ._sharedir import ShareDir
    from .applications import Application, Command
    from .applications.executable import Executable
    from .backends import Backend, BackendDriver, BackendStatus, DriverContext, Handle, SubmitUnit
    from .backends.condor import Condor
    from .backends.dask import Dask
    from .backends.local import Local
    from .backends.slurm import Slurm
    from .config import Config, load_config
    from .credentials import (
        AFSToken,
        BearerToken,
        Credential,
        CredentialInfo,
        CredentialManager,
        CredentialStore,
        KerberosTicket,
        VomsProxy,
        X509Proxy,
    )
    from .engine import Engine
    from .events import CredentialEvent, EventStream, JobEvent, PostprocessEvent, RetryEvent
    from .model.job import Job, JobInfo, JobTimes
    from .model.retry import Attempt, Retry
    from .model.task import CoreTask, CoreTransform, TaskChainInput, TaskStatus, UnitStatus
    from .postprocessors import (
        CustomChecker,
        CustomMerger,
        FileChecker,
        Notifier,
        PostProcessor,
        SmartMerger,
        TextMerger,
        WebhookNotifier,
    )
    from .prepared.box import Box, BoxEntry
    from .prepared.shareref import ShareDirInfo, ShareRef
    from .splitters import Splitter
    from .splitters.arg import ArgSplitter
    from .splitters.files import FileSplitter
    from .splitters.generic import GenericSplitter

__all__ = [
    "AFSToken",
    "Application",
    "Attempt",
    "ArgSplitter",
    "Backend",
    "BackendDriver",
    "BackendError",
    "BackendStatus",
    "BackendUnavailableError",
    "BearerToken",
    "Box",
    "BoxEntry",
    "BoxEntryNotFoundError",
    "Command",
    "Condor",
    "Config",
    "CoreTask",
    "CoreTransform",
    "ConfigError",
    "Credential",
    "CredentialError",
    "CredentialEvent",
    "CredentialInfo",
    "CredentialManager",
    "CredentialStore",
    "CustomChecker",
    "CustomMerger",
    "Dask",
    "DriverContext",
    "Engine",
    "EngineClosedError",
    "EventStream",
    "Executable",
    "FileChecker",
    "FileSplitter",
    "GangaAsyncError",
    "GenericSplitter",
    "Handle",
    "Job",
    "JobEvent",
    "PostprocessEvent",
    "RetryEvent",
    "JobInfo",
    "JobNotFoundError",
    "JobSpecError",
    "JobStateError",
    "JobTimes",
    "KerberosTicket",
    "Local",
    "Notifier",
    "PluginError",
    "PostProcessError",
    "PostProcessor",
    "RenewalError",
    "RepositoryError",
    "RepositoryLockedError",
    "Retry",
    "SchemaVersionError",
    "ShareDir",
    "ShareDirError",
    "ShareDirInfo",
    "ShareRef",
    "Slurm",
    "SmartMerger",
    "Splitter",
    "Status",
    "SubmitUnit",
    "TaskChainInput",
    "TaskStatus",
    "TextMerger",
    "UnitStatus",
    "VomsProxy",
    "WaitTimeoutError",
    "WebhookNotifier",
    "X509Proxy",
    "load_config",
]

# Everything else is imported when first named (PEP 562): a process imports what it uses, so
# a script that submits Local jobs, or a command that only talks to the daemon, does not
# import the other backends, the postprocessors, the credential types or (the daemon's
# client) the engine. ``dir(ganga_async)`` lists them all.
_LAZY = {
    "ShareDir": "._sharedir",
    **dict.fromkeys(("Application", "Command"), ".applications"),
    "Executable": ".applications.executable",
    **dict.fromkeys(("Backend", "BackendDriver", "BackendStatus", "DriverContext", "Handle",
                     "SubmitUnit"), ".backends"),
    "Local": ".backends.local", "Slurm": ".backends.slurm", "Condor": ".backends.condor",
    "Dask": ".backends.dask",
    **dict.fromkeys(("Config", "load_config"), ".config"),
    **dict.fromkeys(("AFSToken", "BearerToken", "Credential", "CredentialInfo",
                     "CredentialManager", "CredentialStore", "KerberosTicket", "VomsProxy",
                     "X509Proxy"), ".credentials"),
    "Engine": ".engine",
    **dict.fromkeys(("CredentialEvent", "EventStream", "JobEvent", "PostprocessEvent",
                     "RetryEvent"), ".events"),
    **dict.fromkeys(("Job", "JobInfo", "JobTimes"), ".model.job"),
    **dict.fromkeys(("Attempt", "Retry"), ".model.retry"),
    **dict.fromkeys(("CoreTask", "CoreTransform", "TaskChainInput", "TaskStatus", "UnitStatus"),
                    ".model.task"),
    **dict.fromkeys(("CustomChecker", "CustomMerger", "FileChecker", "Notifier", "PostProcessor",
                     "SmartMerger", "TextMerger", "WebhookNotifier"), ".postprocessors"),
    **dict.fromkeys(("Box", "BoxEntry"), ".prepared.box"),
    **dict.fromkeys(("ShareDirInfo", "ShareRef"), ".prepared.shareref"),
    "Splitter": ".splitters", "ArgSplitter": ".splitters.arg", "FileSplitter": ".splitters.files",
    "GenericSplitter": ".splitters.generic",
}
__getattr__, __dir__ = _plugins.lazy_exports(__name__, _LAZY, globals())
