"""Typed, validated, serialisable settings objects: the base of applications, splitters and backends.

A component is a keyword-only dataclass. Every assignment is checked against the field's
annotation, so ``Executable(args="x")`` fails at once with the field's name and the fix. Once the
job that owns it is submitted the component is frozen and assignments are refused.
Components serialise to ``{"type": <plugin name>, <field>: <value>, ...}``.
"""

from __future__ import annotations

import abc
import copy
import dataclasses
import json
import os
import types
import typing
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar, Union, get_args, get_origin

from . import _plugins
from ._exceptions import JobSpecError, JobStateError, PluginError

__all__ = ["Component", "JobView", "build_component", "build_plugin", "check_value", "freeze",
           "frozen_by", "owner_of", "set_owner", "thaw", "use_defaults"]

C = TypeVar("C", bound="Component")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in get_args(tp))}]"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def check_value(value: Any, tp: Any, where: str) -> Any:
    """Return ``value`` checked against annotation ``tp`` (tuples become lists, paths strings).

    Raises JobSpecError naming ``where`` and the expected type.
    """
    if tp is Any:
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise JobSpecError(
                where, f"{value!r:.80} cannot be stored ({exc}); use strings, numbers, booleans, "
                "lists and dicts of them"
            ) from None
        return value
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return check_value(value, arg, where)
            except JobSpecError:
                continue
        raise JobSpecError(where, f"expected {_type_name(tp)}, got {type(value).__name__} {value!r:.80}")
    if tp is type(None):
        if value is None:
            return None
    elif origin is list:
        if isinstance(value, list | tuple):
            (item,) = get_args(tp)
            plain = _plain_strings(value, item)
            if plain is not None:
                return plain
            return [check_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            key_tp, item = get_args(tp)
            return {
                check_value(k, key_tp, f"{where} key"): check_value(v, item, f"{where}[{k!r}]")
                for k, v in value.items()
            }
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise JobSpecError(where, f"expected {_type_name(tp)}, got {type(value).__name__} {value!r:.80}")


def _plain_strings(value: list[Any] | tuple[Any, ...], item: Any) -> list[Any] | None:
    """``value`` checked as :func:`check_value` would, without naming each item, when it is
    a list of strings or of lists of strings (a splitter's million argument lists: several
    times faster); None when any item is something else, to be checked one by one."""
    if item is str:
        return list(value) if all(type(v) is str for v in value) else None
    if get_origin(item) is not list or get_args(item) != (str,):
        return None
    checked: list[list[str]] = []
    add = checked.append
    for entry in value:
        if type(entry) is not list and type(entry) is not tuple:
            return None
        for text in entry:
            if type(text) is not str:
                return None
        add(list(entry))
    return checked


_defaults_source: Callable[[type], Mapping[str, Any]] | None = None


def use_defaults(source: Callable[[type], Mapping[str, Any]] | None) -> None:
    """Make ``source(cls)`` give the field defaults a component of class ``cls`` takes when
    built without those fields (``Config.plugin_defaults``: Ganga's ``[defaults_<Plugin>]``
    sections); None: the classes' own defaults only. The plain-Python interface installs its
    configuration's."""
    global _defaults_source  # noqa: PLW0603 (one source per process, as Ganga's config)
    _defaults_source = source


class _ComponentType(abc.ABCMeta):
    """Builds components with the configured field defaults for the fields not given."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        source = _defaults_source
        if source is not None:
            for name, value in source(cls).items():
                if name not in kwargs:
                    kwargs[name] = copy.deepcopy(value)
        return super().__call__(*args, **kwargs)


class Component(metaclass=_ComponentType):  # noqa: B024 (abstract methods live in the plugin bases)
    """Base class of applications, splitters and backends.

    Subclasses are ``@dataclasses.dataclass(kw_only=True)`` classes; ``category`` names the
    attribute of a Job they fill (``application``, ``splitter``, ``backend``).
    """

    category: ClassVar[str] = "component"
    user_methods: ClassVar[tuple[str, ...]] = ("copy",)
    """The methods a user calls, listed with the fields by ``dir()`` (tab completion); a
    subclass adds its own (the union over the classes is shown)."""
    _frozen_by: str | None = None

    def __dir__(self) -> list[str]:
        """The fields and :attr:`user_methods` only: what tab completion offers a user."""
        methods = {m for klass in type(self).__mro__ for m in klass.__dict__.get("user_methods", ())}
        return sorted({*self.field_names(), *methods})

    @classmethod
    def _hints(cls) -> dict[str, Any]:
        cached: dict[str, Any] | None = cls.__dict__.get("_hints_cache")
        if cached is None:
            cached = typing.get_type_hints(cls)
            cls._hints_cache = cached  # type: ignore[attr-defined]
        return cached

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        cached: tuple[str, ...] | None = cls.__dict__.get("_fields_cache")
        if cached is None:
            cached = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
            cls._fields_cache = cached  # type: ignore[attr-defined]
        return cached

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        fields = self.field_names()
        if name not in fields:
            raise JobSpecError(
                f"{self.category}.{name}",
                f"{type(self).__name__} has no field {name!r}; valid fields: {', '.join(fields)}",
            )
        if self._frozen_by is not None:
            raise JobStateError(
                f"{self.category}.{name} is read-only: {self._frozen_by}; "
                "make an editable copy with job.copy()"
            )
        value = check_value(value, self._hints()[name], f"{self.category}.{name}")
        object.__setattr__(self, name, value)
        owner: _Owner | None = self.__dict__.get("_owner")
        if owner is not None:
            owner.notify()

    @classmethod
    def field_type(cls, name: str) -> Any:
        """The annotation of field ``name`` (what :func:`check_value` checks a value against)."""
        return cls._hints()[name]

    @property
    def plugin_name(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        """The serialised form: ``{"type": name, field: value, ...}``."""
        data: dict[str, Any] = {"type": self.plugin_name}
        for name in self.field_names():
            data[name] = getattr(self, name)
        return data

    @classmethod
    def from_fields(cls: type[C], fields: dict[str, Any], where: str) -> C:
        """Build from a field mapping, refusing unknown fields with the list of valid ones."""
        valid = cls.field_names()
        for name in fields:
            if name not in valid:
                raise JobSpecError(
                    f"{where}.{name}",
                    f"{cls.__name__} has no field {name!r}; valid fields: {', '.join(valid)}",
                )
        try:
            return cls(**fields)
        except TypeError as exc:
            raise JobSpecError(where, f"{cls.__name__}: {exc}") from None

    def copy(self: C) -> C:
        """An unfrozen deep copy."""
        clone = copy.deepcopy(self)
        thaw(clone)
        return clone

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.field_names())
        return f"{type(self).__name__}({args})"


class _Owner:
    """Whom a component belongs to (a job) and how to tell it of an edit; a copy of the
    component belongs to nobody (deep copies get None)."""

    __slots__ = ("owner", "callback")

    def __init__(self, owner: object, callback: Callable[[], None]) -> None:
        self.owner = weakref.ref(owner)
        self.callback = weakref.WeakMethod(callback)

    def notify(self) -> None:
        callback = self.callback()
        if callback is not None:
            callback()

    def __deepcopy__(self, memo: dict[int, Any]) -> None:
        return None


def set_owner(component: Component, owner: object | None,
              callback: Callable[[], None] | None = None) -> None:
    """Make ``component`` belong to ``owner`` (a job), whose bound method ``callback`` is
    called after each assignment to one of its fields; ``None`` releases it."""
    if owner is None or callback is None:
        component.__dict__.pop("_owner", None)
    else:
        component.__dict__["_owner"] = _Owner(owner, callback)


def owner_of(component: Component) -> object | None:
    """The object ``component`` belongs to (its job), or None."""
    owner: _Owner | None = component.__dict__.get("_owner")
    return None if owner is None else owner.owner()


def freeze(component: Component, reason: str) -> None:
    """Make ``component`` read-only because of ``reason`` (``"job 3 is submitted"``, shown in
    the error an assignment gets). The job model calls it on its components when it is
    submitted; copies are never frozen."""
    component._frozen_by = reason  # noqa: SLF001 (this module keeps Component's freeze)


def thaw(component: Component) -> None:
    """Make ``component`` editable again (its job went back to ``new``)."""
    component._frozen_by = None  # noqa: SLF001 (this module keeps Component's freeze)


def frozen_by(component: Component) -> str | None:
    """Why ``component`` is read-only, or None when it is editable."""
    return component._frozen_by  # noqa: SLF001 (this module keeps Component's freeze)


class JobView(Protocol):
    """What a plugin sees of a job: its description, read-only.

    Splitters (``split(job)``, ``validate(job)``), ``Backend.validate(job)`` and the credential
    manager are given the :class:`~ganga_async.Job` itself, which has all of these; the
    plugins are written against this view so that they never depend on the job model. A
    plugin that annotates ``job: Job`` instead, or not at all, works the same at run time.

    ``id`` is the job's repository id (None until it is stored; a subjob's index).
    """

    @property
    def id(self) -> int | None: ...

    @property
    def name(self) -> str: ...

    @property
    def application(self) -> Component: ...

    @property
    def backend(self) -> Component: ...

    @property
    def splitter(self) -> Component | None: ...

    @property
    def inputfiles(self) -> Sequence[str]: ...

    @property
    def outputfiles(self) -> Sequence[str]: ...

    @property
    def credentials(self) -> Sequence[Component]: ...


def _listed(category: str) -> str:
    """The installed plugins of ``category``, for an error message (listing them reads every
    distribution's entry points: only when there is an error to report)."""
    return ", ".join(_plugins.available(category)) or "none installed"


def _example(category: str) -> str:
    available = _plugins.available(category)
    return f'type = "{available[0] if available else "..."}"'


def build_component(base: type[C], data: Any) -> C:
    """A component from its serialised form, ``{"type": <plugin name>, <field>: <value>, ...}``.

    ``base`` is the plugin base class (Application, Splitter or Backend); its ``category``
    names the entry-point group. Every mistake (not a table, no or an unknown ``type``, a plugin
    of another kind, an unknown field, a wrong type) is a JobSpecError naming the field.
    """
    return _build(base.category, base, data)


def build_plugin(category: str, data: Any) -> Component:
    """:func:`build_component` for code that knows only the category (``"credential"``), not
    the plugin base class: the foundation modules, which import no plugin package."""
    return _build(category, Component, data)


def _build(category: str, base: type[C], data: Any) -> C:
    if not isinstance(data, dict):
        raise JobSpecError(
            category, f"must be a table: a line [{category}], then {_example(category)} and its "
                      "fields"
        )
    fields = dict(data)
    name = fields.pop("type", None)
    if name is None:
        raise JobSpecError(f"{category}.type", f"is missing; add {_example(category)} "
                                               f"(available: {_listed(category)})")
    if not isinstance(name, str):
        raise JobSpecError(f"{category}.type", f"must be a string like {_example(category)}")
    try:
        cls = _plugins.load(category, name)
    except PluginError:
        if name in _plugins.available(category):
            raise
        raise JobSpecError(
            f"{category}.type", f"unknown {category} {name!r}; available: {_listed(category)}"
        ) from None
    if not issubclass(cls, base) or cls.category != category:
        kind = category if base is Component else base.__name__
        raise JobSpecError(f"{category}.type", f"{name!r} is not a {kind} plugin")
    return cls.from_fields(fields, where=category)
