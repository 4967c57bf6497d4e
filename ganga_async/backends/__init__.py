"""Backends: where jobs run. :class:`Backend` and :class:`BackendDriver` are the plugin contract;
:class:`TrackingDriver` is the base most drivers are built on. ``Backend.validate(job)`` sees the job
through :class:`JobView`."""

from .._component import JobView
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
    "Backend", "BackendDriver", "BackendStatus", "DriverContext", "Handle", "JobView", "SubmitUnit",
    "Tracked", "TrackingDriver",
]
