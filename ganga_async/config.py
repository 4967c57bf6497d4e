"""Configuration: shipped defaults, a user file, environment variables and runtime changes.

Layers, later ones winning:

1. ``config/defaults.toml`` shipped with the package: it lists every section and option, and the
   type of each default is the type the option accepts;
2. the user's file, ``$GANGA_ASYNC_CONFIG`` or ``~/.ganga-async.toml`` (same layout);
3. environment variables ``GANGA_ASYNC_<SECTION>_<OPTION>`` (``GANGA_ASYNC_LOCAL_MAX_CONCURRENT=4``),
   and ``GANGA_ASYNC_GANGADIR`` for ``[Configuration] gangadir``;
4. assignments at run time: ``config['Local']['max_concurrent'] = 4``.

An unknown section or option, or a value of the wrong type, is a :class:`ConfigError` that lists
what is valid. Durations (``[Credentials] min_time_left``) accept seconds or text such as
``"1h"`` or ``"30m"`` and are stored as seconds; table options given in an environment variable
are written as a TOML inline table (``{Slurm = "2h"}``). Readers look options up when they need
them, so runtime changes take effect for the next job that uses them.
"""

from __future__ import annotations

import copy
import dataclasses
import getpass
import math
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from . import _plugins
from ._component import Component, build_plugin, check_value
from ._duration import parse_duration
from ._exceptions import ConfigError, GangaAsyncError, JobSpecError
from ._resources import shipped

__all__ = ["Config", "Section", "credential_default", "load_config", "shipped_config", "unknown_variables"]

ENV_PREFIX = "GANGA_ASYNC_"
_NOT_OPTIONS = {"GANGA_ASYNC_CONFIG", "GANGA_ASYNC_GANGADIR"}


def _duration_table(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a table of durations like {{Slurm = \"2h\"}}, got {value!r}")
    return {str(key): parse_duration(item, f"[{key!r}]") for key, item in value.items()}


_SCOPES = ("backends", "applications")


def credential_default(name: str, data: Any) -> tuple[Component, dict[str, tuple[str, ...]]]:
    """Check entry ``name`` of ``[Credentials] defaults`` and build its credential; return it
    with the names it applies to (``{"backends": (...), "applications": (...)}``, empty for
    all). Raise ConfigError naming the entry and the fix."""
    where = f"defaults.{name}"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a table with `type` and the credential's arguments, e.g. "
                          '{type = "VomsProxy", vo = "lhcb", backends = ["Dirac"]}')
    fields = dict(data)
    scopes: dict[str, tuple[str, ...]] = {}
    for scope in _SCOPES:
        value = fields.pop(scope, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}.{scope} must be a list of {scope[:-1]} names, e.g. "
                              f'{scope} = ["{"Local" if scope == "backends" else "Executable"}"]')
        scopes[scope] = tuple(value)
    try:
        credential = build_plugin("credential", fields)
    except JobSpecError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return credential, scopes


def _credential_defaults(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping):
        raise ConfigError("must be a table of named entries, e.g. [Credentials.defaults.lhcb] with "
                          'type = "VomsProxy" and vo = "lhcb"')
    checked = {}
    for name, data in value.items():
        credential_default(str(name), data)
        checked[str(name)] = dict(data)
    return checked


def _plain_name(value: Any) -> Any:
    """``[Configuration] user``: empty (the login name) or one path component."""
    if isinstance(value, str) and value and (
            value in (".", "..") or not all(c.isalnum() or c in "._-@" for c in value)):
        raise ValueError(f"{value!r} is not a user name: it names a directory inside the "
                         "gangadir, so use letters, digits, '.', '_', '-' or '@' (empty: the "
                         "login name)")
    return value


def _condor_client(value: Any) -> Any:
    """``[Condor] client``: how the schedd is reached."""
    if value not in ("auto", "bindings", "commands"):
        raise ValueError(f"{value!r} is not a way to reach the schedd; give 'auto', 'bindings' "
                         "(htcondor2) or 'commands' (condor_q, condor_submit, ... on PATH)")
    return value


def _directory(value: Any) -> Any:
    """``[Configuration] gangadir``: a directory, never empty (that would be the current one)."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("is empty; name a directory such as ~/gangadir-async (an empty one "
                         "would put the repository in whatever directory a command runs from)")
    if isinstance(value, str) and os.path.exists(os.path.expanduser(value)) and not os.path.isdir(
            os.path.expanduser(value)):
        raise ValueError(f"{value} is not a directory; name a directory (or a path where one "
                         "can be made)")
    return value


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "OFF")


def _level(value: Any) -> Any:
    """``[Logging] console``: a level name."""
    if isinstance(value, str) and value.upper() not in _LEVELS:
        raise ValueError(f"{value!r} is not a level; use one of {', '.join(_LEVELS)}")
    return value.upper() if isinstance(value, str) else value


_CHECKS: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("Credentials", "min_time_left"): lambda v: parse_duration(v, "value"),
    ("Credentials", "renew_margin"): lambda v: parse_duration(v, "value"),
    ("Credentials", "check_interval"): lambda v: parse_duration(v, "value"),
    ("Credentials", "command_timeout"): lambda v: parse_duration(v, "value"),
    ("Credentials", "min_time_left_by_backend"): _duration_table,
    ("Credentials", "defaults"): _credential_defaults,
    ("Configuration", "user"): _plain_name,
    ("Configuration", "gangadir"): _directory,
    ("Logging", "console"): _level,
    ("Condor", "client"): _condor_client,
}
"""Options whose values need more than a type check; each returns the value to store."""


_POSITIVE = frozenset({
    ("Slurm", "poll_min"), ("Slurm", "poll_max"), ("Slurm", "command_timeout"),
    ("Slurm", "max_commands"), ("Slurm", "heartbeat"), ("Condor", "poll_min"), ("Condor", "poll_max"),
    ("Condor", "command_timeout"), ("Condor", "max_commands"), ("Condor", "heartbeat"),
    ("Monitoring", "poll_interval"),
    ("Dask", "poll_min"), ("Dask", "poll_max"), ("Dask", "connect_timeout"), ("Dask", "heartbeat"),
    ("Monitoring", "command_timeout"), ("Pipeline", "stream_size"), ("Pipeline", "submit_batch"),
    ("Service", "stop_timeout"), ("Service", "max_commands"), ("Service", "start_timeout"),
    ("Service", "dashboard_coalesce"), ("Service", "dashboard_event_rate"),
    ("Service", "dashboard_client_buffer"), ("Service", "dashboard_recent"),
    ("Service", "event_backlog"), ("Service", "drop_timeout"),
})
"""Numeric options that must be above zero; every other number must be zero or more."""


def _in_range(section: str, option: str, value: Any, where: str) -> Any:
    """A number that is finite and, as the option needs, above zero or not below it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {value!r} is not a number of seconds or a count")
    if (section, option) in _POSITIVE and value <= 0:
        raise ConfigError(f"{where}: must be above 0, not {value!r}")
    if value < 0:
        raise ConfigError(f"{where}: must be 0 or more, not {value!r}")
    return value


def _coerce(section: str, option: str, default: Any, value: Any, source: str) -> Any:
    """Return ``value`` converted to the type of ``default`` and checked (a type, and the
    range a number must be in), or raise a ConfigError naming it."""
    where = f"[{section}] {option} (from {source})"
    return _in_range(section, option, _converted(section, option, default, value, where), where)


def _converted(section: str, option: str, default: Any, value: Any, where: str) -> Any:
    kind = type(default)
    if isinstance(value, str) and kind is dict:
        try:
            value = tomllib.loads(f"value = {value}")["value"]
        except (tomllib.TOMLDecodeError, RecursionError):
            shown = repr(value) if len(value) <= 80 else f"{value[:60]!r}... ({len(value)} characters)"
            raise ConfigError(
                f"{where}: {shown} is not a TOML inline table such as {{Slurm = \"2h\"}}"
            ) from None
    check = _CHECKS.get((section, option))
    if check is not None:
        try:
            return check(value)
        except (ValueError, GangaAsyncError) as exc:
            text = str(exc).removeprefix("value: ")
            raise ConfigError(f"{where}: {text}") from None
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        try:
            if kind is bool:
                lowered = text.lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError(text)
            if kind is int:
                return int(text)
            if kind is float:
                return float(text)
            if kind is list:
                return [item.strip() for item in text.split(",") if item.strip()]
        except ValueError:
            raise ConfigError(
                f"{where}: {value!r} is not a valid {kind.__name__}; "
                f"the default is {default!r}"
            ) from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(
            f"{where}: expected a {kind.__name__} like the default {default!r}, "
            f"got {type(value).__name__} {value!r}"
        )
    return value


def _check_option(section: str, defaults: Mapping[str, Any], option: str) -> None:
    if option not in defaults:
        valid = ", ".join(sorted(defaults))
        raise ConfigError(f"[{section}] has no option {option!r}; valid options: {valid}")


class Section(Mapping[str, Any]):
    """One configuration section; ``section[option] = value`` (or ``section.option = value``)
    validates the option and type."""

    def __init__(self, name: str, defaults: dict[str, Any], values: dict[str, Any]) -> None:
        self.name = name
        self._defaults = defaults
        self._values = values

    def __getitem__(self, option: str) -> Any:
        _check_option(self.name, self._defaults, option)
        return self._values[option]

    def __setitem__(self, option: str, value: Any) -> None:
        self._values[option] = self.check(option, value, "runtime assignment")

    def __getattr__(self, option: str) -> Any:
        if option.startswith("_"):
            raise AttributeError(option)
        return self[option]

    def __setattr__(self, option: str, value: Any) -> None:
        if option == "name" or option.startswith("_"):
            object.__setattr__(self, option, value)
        else:
            self[option] = value

    def check(self, option: str, value: Any, source: str) -> Any:
        """``value`` checked and converted for ``option``, or a ConfigError naming both."""
        _check_option(self.name, self._defaults, option)
        return _coerce(self.name, option, self._defaults[option], value, source)

    def put(self, option: str, value: Any) -> None:
        """Set ``option`` to a value :meth:`check` gave."""
        self._values[option] = value

    def __iter__(self) -> Iterator[str]:
        return iter(self._defaults)

    def __len__(self) -> int:
        return len(self._defaults)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self.items())
        return f"[{self.name}] {items}"


PLUGIN_PREFIX = "defaults_"
"""``[defaults_<Plugin>]`` sections set the defaults of a plugin's fields, as Ganga's."""


class PluginDefaults(Section):
    """``[defaults_Executable]``, ``[defaults_Local]``...: the defaults of the plugin's fields
    (``exe = "/bin/hostname"``), used when one is built without that field, as Ganga's. An
    option is a field of the plugin, checked as the field is."""

    def __init__(self, cls: type[Component]) -> None:
        defaults = {f.name: _field_default(f) for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                    if not f.name.startswith("_")}
        super().__init__(PLUGIN_PREFIX + cls.__name__, defaults, copy.deepcopy(defaults))
        self._cls = cls

    def check(self, option: str, value: Any, source: str) -> Any:
        if option not in self._defaults:
            valid = ", ".join(self._defaults) or "none"
            raise ConfigError(f"[{self.name}] has no option {option!r}: {self._cls.__name__} has "
                              f"no such field; valid options (its fields): {valid}")
        try:
            return check_value(value, self._cls.field_type(option), f"{self.name}.{option}")
        except JobSpecError as exc:
            raise ConfigError(f"[{self.name}] {option} (from {source}): {exc}") from None

    def changed(self) -> dict[str, Any]:
        """The options set to something other than the plugin's own default."""
        return {k: v for k, v in self._values.items() if v != self._defaults[k]}


def _field_default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _plugin_class(name: str) -> type[Component]:
    """The plugin class named by section ``defaults_<name>``, or a ConfigError listing them."""
    for category in _plugins.GROUPS:
        if name in _plugins.available(category):
            cls: type[Component] = _plugins.load(category, name)
            return cls
    names = ", ".join(sorted({n for c in _plugins.GROUPS for n in _plugins.available(c)}))
    raise ConfigError(f"no configuration section [{PLUGIN_PREFIX}{name}]: no plugin named {name!r}; "
                      f"plugins: {names}")


class Config(Mapping[str, Section]):
    """All configuration sections. Build one with :func:`load_config`.

    ``config["Local"]`` or ``config.Local``; the ``[defaults_<Plugin>]`` sections exist for
    every installed plugin (``config["defaults_Executable"]["exe"] = "ls"``) without being
    listed when iterating."""

    def __init__(self, defaults: dict[str, dict[str, Any]]) -> None:
        for (section, option), check in _CHECKS.items():
            if option in defaults.get(section, {}):
                defaults[section][option] = check(defaults[section][option])
        self._defaults = defaults
        self._values = {name: dict(options) for name, options in defaults.items()}
        self._sections = {name: Section(name, defaults[name], self._values[name]) for name in defaults}
        self._plugin_sections: dict[str, PluginDefaults] = {}

    def __getitem__(self, name: str) -> Section:
        try:
            return self._sections[name]
        except KeyError:
            if name.startswith(PLUGIN_PREFIX):
                return self._plugin_section(name.removeprefix(PLUGIN_PREFIX))
            valid = ", ".join(sorted(self._sections))
            raise ConfigError(f"no configuration section [{name}]; valid sections: {valid}, "
                              f"and {PLUGIN_PREFIX}<Plugin> for a plugin's defaults") from None

    def __getattr__(self, name: str) -> Section:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def _plugin_section(self, plugin: str) -> PluginDefaults:
        section = self._plugin_sections.get(plugin)
        if section is None:
            section = self._plugin_sections[plugin] = PluginDefaults(_plugin_class(plugin))
        return section

    def plugin_defaults(self, cls: type) -> dict[str, Any]:
        """The field defaults ``[defaults_<cls name>]`` sets (empty when none)."""
        section = self._plugin_sections.get(cls.__name__)
        return section.changed() if section is not None else {}

    def __iter__(self) -> Iterator[str]:
        return iter(self._sections)

    def __len__(self) -> int:
        return len(self._sections)

    def update(self, values: Mapping[str, Mapping[str, Any]], source: str) -> None:
        """Apply a ``{section: {option: value}}`` layer, validating every entry first."""
        staged: list[tuple[Section, str, Any]] = []
        for name, options in values.items():
            section = self[name]
            if not isinstance(options, Mapping):
                raise ConfigError(f"[{name}] in {source} must be a table of options")
            for option, value in options.items():
                staged.append((section, option, section.check(option, value, source)))
        for section, option, value in staged:
            section.put(option, value)

    @property
    def gangadir(self) -> Path:
        """The gangadir with ``~`` expanded."""
        return Path(os.path.expanduser(self["Configuration"]["gangadir"]))

    @property
    def user(self) -> str:
        return str(self["Configuration"]["user"]) or getpass.getuser()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode()
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}; fix the TOML syntax at that line") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text ({exc.reason} at byte {exc.start}); save it "
                          "as UTF-8") from None
    except RecursionError:
        raise ConfigError(f"{path}: its arrays or tables are nested too deeply to read; no option "
                          "needs more than a few levels, so write them flat") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from exc


def _env_layer(config: Config, environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    names = {
        f"{ENV_PREFIX}{section.upper()}_{option.upper()}": (section, option)
        for section, options in config.items()
        for option in options
    }
    layer: dict[str, dict[str, str]] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key in _NOT_OPTIONS:
            continue
        if key not in names:
            valid = ", ".join(sorted(names | dict.fromkeys(_NOT_OPTIONS)))
            raise ConfigError(f"environment variable {key} is not a ganga-async option; valid: {valid}")
        section, option = names[key]
        layer.setdefault(section, {})[option] = value
    if "GANGA_ASYNC_GANGADIR" in environ:
        layer.setdefault("Configuration", {})["gangadir"] = environ["GANGA_ASYNC_GANGADIR"]
    return layer


def shipped_config() -> Config:
    """The shipped defaults alone: no user file, no ``GANGA_ASYNC_*`` variables (for tests and
    benchmarks that must not depend on the machine they run on)."""
    return Config(_read_toml(shipped("config", "defaults.toml")))


def unknown_variables(config: Config | None = None,
                      environ: Mapping[str, str] | None = None) -> list[str]:
    """The ``GANGA_ASYNC_*`` variables of ``environ`` (default ``os.environ``) that name no
    option of ``config`` (default: the shipped options), which :func:`load_config` refuses.
    The command line warns about them and goes on: a typo must not stop ``jobs``."""
    env = os.environ if environ is None else environ
    config = shipped_config() if config is None else config
    names = {f"{ENV_PREFIX}{section.upper()}_{option.upper()}"
             for section, options in config.items() for option in options}
    return sorted(key for key in env
                  if key.startswith(ENV_PREFIX) and key not in _NOT_OPTIONS and key not in names)


def load_config(
    user_file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build the configuration from the shipped defaults, the user file and the environment.

    ``user_file`` defaults to ``$GANGA_ASYNC_CONFIG`` or ``~/.ganga-async.toml`` (a missing
    default file is fine; a missing file named explicitly is an error).
    """
    env = os.environ if environ is None else environ
    config = shipped_config()
    explicit = user_file if user_file is not None else env.get("GANGA_ASYNC_CONFIG")
    path = Path(explicit) if explicit else Path.home() / ".ganga-async.toml"
    if explicit or path.exists():
        config.update(_read_toml(path), source=str(path))
    config.update(_env_layer(config, env), source="environment")
    return config

