"""Splitters: how one master job is cut into subjobs. :class:`Splitter` is the plugin contract.

A splitter yields, for each subjob, only what differs from the master (:data:`Overrides`:
attribute path to value), streaming, so 10^5 subjobs are never 10^5 Job objects. Splitters are
plugins of the ``ganga_async.splitters`` entry-point group and see a job through
:class:`JobView`, never the model itself; :func:`check_path` checks that an attribute path
names a field a splitter may set and that a value fits it.
"""

from .._component import JobView
from .base import Overrides, Splitter, check_path

__all__ = ["JobView", "Overrides", "Splitter", "check_path"]
