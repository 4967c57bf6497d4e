"""Finding applications, splitters, backends and credentials through entry points.

Each category is an entry-point group (``ganga_async.applications``, ``ganga_async.splitters``,
``ganga_async.backends``, ``ganga_async.credentials``, ``ganga_async.postprocessors``). A plugin
is imported the first time it is asked for; an import failure is kept and raised as a
:class:`PluginError` each time that plugin is used.

The plugins shipped with ganga-async (:data:`BUILTIN`, the entry points of its own
``pyproject.toml``, which a test keeps equal) are found without reading the entry points of
every installed distribution, and win over a third-party plugin of the same name. Reading them
(and importing ``importlib.metadata``) is left to the first name that is not built in, or to a
listing: it was a tenth of the start of a fresh process submitting its first job.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from ._exceptions import PluginError

GROUPS = {
    "application": "ganga_async.applications",
    "splitter": "ganga_async.splitters",
    "backend": "ganga_async.backends",
    "credential": "ganga_async.credentials",
    "postprocessor": "ganga_async.postprocessors",
}

BUILTIN: dict[str, dict[str, str]] = {
    "application": {"Executable": "ganga_async.applications.executable:Executable"},
    "splitter": {"ArgSplitter": "ganga_async.splitters.arg:ArgSplitter",
                 "GenericSplitter": "ganga_async.splitters.generic:GenericSplitter",
                 "FileSplitter": "ganga_async.splitters.files:FileSplitter"},
    "backend": {"Local": "ganga_async.backends.local:Local",
                "Slurm": "ganga_async.backends.slurm:Slurm",
                "Condor": "ganga_async.backends.condor:Condor",
                "Dask": "ganga_async.backends.dask:Dask"},
    "credential": {"X509Proxy": "ganga_async.credentials.x509:X509Proxy",
                   "VomsProxy": "ganga_async.credentials.x509:VomsProxy",
                   "KerberosTicket": "ganga_async.credentials.kerberos:KerberosTicket",
                   "AFSToken": "ganga_async.credentials.afs:AFSToken",
                   "BearerToken": "ganga_async.credentials.token:BearerToken"},
    "postprocessor": {"TextMerger": "ganga_async.postprocessors.mergers:TextMerger",
                      "CustomMerger": "ganga_async.postprocessors.mergers:CustomMerger",
                      "SmartMerger": "ganga_async.postprocessors.mergers:SmartMerger",
                      "FileChecker": "ganga_async.postprocessors.checkers:FileChecker",
                      "CustomChecker": "ganga_async.postprocessors.checkers:CustomChecker",
                      "Notifier": "ganga_async.postprocessors.notifiers:Notifier",
                      "WebhookNotifier": "ganga_async.postprocessors.notifiers:WebhookNotifier"},
}
"""``{category: {name: "module:attribute"}}`` of the plugins ganga-async ships."""

_entry_points: dict[str, dict[str, Any]] = {}
_loaded: dict[tuple[str, str], type] = {}
_failed: dict[tuple[str, str], PluginError] = {}


def _group(category: str) -> dict[str, Any]:
    found = _entry_points.get(category)
    if found is None:
        from importlib.metadata import entry_points

        found = {ep.name: ep for ep in entry_points(group=GROUPS[category])}
        _entry_points[category] = found
    return found


def available(category: str) -> list[str]:
    """Names of the installed plugins of a category."""
    return sorted({*BUILTIN[category], *_group(category)})


def load(category: str, name: str) -> type:
    """The plugin class ``name`` of ``category`` (``application``, ``splitter``, ``backend``,
    ``credential``)."""
    key = (category, name)
    cls = _loaded.get(key)
    if cls is not None:
        return cls
    if key in _failed:
        raise _failed[key]
    builtin = BUILTIN[category].get(name)
    if builtin is not None:
        module, _, attribute = builtin.partition(":")
        cls = getattr(importlib.import_module(module), attribute)
        _loaded[key] = cls
        return cls  # type: ignore[no-any-return]
    ep = _group(category).get(name)
    if ep is None:
        names = ", ".join(available(category)) or "none installed"
        raise PluginError(f"unknown {category} {name!r}; available: {names}")
    try:
        cls = ep.load()
    except Exception as exc:  # any import-time failure of a third-party plugin
        error = PluginError(f"{category} plugin {name!r} ({ep.value}) failed to import: {exc!r}")
        error.__cause__ = exc
        _failed[key] = error
        raise error from exc
    _loaded[key] = cls
    return cls  # type: ignore[no-any-return]


def register(category: str, cls: type) -> None:
    """Make a class available under its own name without an entry point (tests, notebooks)."""
    _loaded[(category, cls.__name__)] = cls


def lazy_exports(package: str, modules: Mapping[str, str], namespace: dict[str, Any]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` (PEP 562) for names imported from
    ``modules[name]`` (relative to ``package``) only when first asked for, as plugins are."""

    def getattr_(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *modules})

    return getattr_, dir_
