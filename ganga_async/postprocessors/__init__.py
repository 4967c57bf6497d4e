"""Postprocessors: what runs on a job's outputs once it is done (Ganga's ``postprocessors``).

Mergers (:class:`TextMerger`, :class:`CustomMerger`, :class:`SmartMerger`) merge the subjobs'
outputs on the master; checkers (:class:`FileChecker`, :class:`CustomChecker`) fail (sub)jobs
whose outputs are wrong; notifiers (:class:`Notifier`, :class:`WebhookNotifier`) tell a person.
They run in that order whatever the order of the job's list. :class:`PostProcessor` is the
plugin contract (entry-point group ``ganga_async.postprocessors``).
"""

from typing import TYPE_CHECKING

from .. import _plugins
from .base import PostProcessor, ProcessedJob, ordered

if TYPE_CHECKING:
    from .checkers import Checker, CustomChecker, FileChecker
    from .mergers import CustomMerger, Merger, SmartMerger, TextMerger
    from .notifiers import Notification, Notifier, NotifierBase, WebhookNotifier

__all__ = ["Checker", "CustomChecker", "CustomMerger", "FileChecker", "Merger", "Notification",
           "Notifier", "NotifierBase", "PostProcessor", "ProcessedJob", "SmartMerger",
           "TextMerger", "WebhookNotifier", "ordered"]

# Imported when first named (as plugins are): a job without postprocessors, most of them, never
# needs the mergers (gzip, glob), checkers and notifiers.
__getattr__, __dir__ = _plugins.lazy_exports(__name__, {
    **{name: ".checkers" for name in ("Checker", "CustomChecker", "FileChecker")},
    **{name: ".mergers" for name in ("CustomMerger", "Merger", "SmartMerger", "TextMerger")},
    **{name: ".notifiers" for name in ("Notification", "Notifier", "NotifierBase",
                                        "WebhookNotifier")},
}, globals())
