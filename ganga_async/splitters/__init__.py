"""Splitters: how one master job is cut into subjobs. :class:`Splitter` is the plugin contract.

A splitter yields, for each subjob, only what differs from the master (attribute path to
value), streaming, so 10^5 subjobs are never 10^5 Job objects. Splitters are plugins of the
``ganga_async.splitters`` entry-point group and see a job through
:class:`~ganga_async._component.JobView`, never the model itself.
"""

from .base import Splitter

__all__ = ["Splitter"]
