"""Applications: what a job runs. :class:`Application` is the plugin contract."""

from .base import Application, Command, PreparedListener

__all__ = ["Application", "Command", "PreparedListener"]
