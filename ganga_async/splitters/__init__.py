"""Splitters: how one master job is cut into subjobs. :class:`Splitter` is the plugin contract."""

from .base import Splitter

__all__ = ["Splitter"]
