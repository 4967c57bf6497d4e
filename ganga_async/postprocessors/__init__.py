"""Postprocessors: what runs on a job's outputs once it is done (Ganga's ``postprocessors``).

Mergers (:class:`TextMerger`, :class:`CustomMerger`, :class:`SmartMerger`) merge the subjobs'
outputs on the master; checkers (:class:`FileChecker`, :class:`CustomChecker`) fail (sub)jobs
whose outputs are wrong; notifiers (:class:`Notifier`, :class:`WebhookNotifier`) tell a person.
They run in that order whatever the order of the job's list. :class:`PostProcessor` is the
plugin contract (entry-point group ``ganga_async.postprocessors``).
"""

from .base import PostProcessor, ProcessedJob, ordered
from .checkers import Checker, CustomChecker, FileChecker
from .mergers import CustomMerger, Merger, SmartMerger, TextMerger
from .notifiers import Notification, Notifier, NotifierBase, WebhookNotifier

__all__ = ["Checker", "CustomChecker", "CustomMerger", "FileChecker", "Merger", "Notification",
           "Notifier", "NotifierBase", "PostProcessor", "ProcessedJob", "SmartMerger",
           "TextMerger", "WebhookNotifier", "ordered"]
