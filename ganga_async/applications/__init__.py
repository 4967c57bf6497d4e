"""Applications: what a job runs. :class:`Application` is the plugin contract.

An application is a typed settings object that validates itself, names the files preparing
copies into a ShareDir, and turns a (sub)job's settings into the :class:`Command` a backend runs.
Applications are plugins of the ``ganga_async.applications`` entry-point group; they import
only the foundation (never the model, the engine or a face), and tell their
:class:`PreparedListener` objects when their prepared state changes.
"""

from .base import Application, Command, PreparedListener

__all__ = ["Application", "Command", "PreparedListener"]
