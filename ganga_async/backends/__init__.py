"""Backends: where jobs run. :class:`Backend` and :class:`BackendDriver` are the plugin contract;
:class:`TrackingDriver` is the base most drivers are built on."""

from .base import (
    Backend,
    BackendDriver,
    BackendStatus,
    DriverContext,
    Handle,
    SubmitUnit,
    Tracked,
    TrackingDriver,
)

__all__ = [
    "Backend", "BackendDriver", "BackendStatus", "DriverContext", "Handle", "SubmitUnit", "Tracked",
    "TrackingDriver",
]
