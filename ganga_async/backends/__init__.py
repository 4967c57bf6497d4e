"""Backends: where jobs run. :class:`Backend` and :class:`BackendDriver` are the plugin contract."""

from .base import Backend, BackendDriver, BackendStatus, DriverContext, Handle, SubmitUnit

__all__ = ["Backend", "BackendDriver", "BackendStatus", "DriverContext", "Handle", "SubmitUnit"]
