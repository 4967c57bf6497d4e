"""Applications: what a job runs. :class:`Application` is the plugin contract."""

from .base import Application, Command

__all__ = ["Application", "Command"]
