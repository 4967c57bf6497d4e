"""Checkers: look at a completed (sub)job's outputs and fail it when they are wrong.

A checker runs on each subjob as it completes (``checkSubjobs``), on an unsplit job as it
completes and on a master once its subjobs are final and its mergers ran (``checkMaster``). A
failed check makes that (sub)job ``failed`` with the checker's reason, so a retry policy can
take it. A checker that cannot check (a bad regular expression, a missing module) fails the
job with that reason too: unlike Ganga, a misconfigured checker never passes silently.

A split master has no outputs of its own but what its mergers wrote: a :class:`FileChecker`
whose files are none of them there skips the master (its subjobs were each checked), where
Ganga failed it (ganga-devs/ganga#2448).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from typing import ClassVar

from .._exceptions import JobSpecError, PostProcessError
from .base import PostProcessor, ProcessedJob, check_relative, load_module

__all__ = ["Checker", "FileChecker", "CustomChecker"]


@dataclasses.dataclass(kw_only=True, repr=False)
class Checker(PostProcessor):
    """Base class of checkers: ``checkSubjobs`` and ``checkMaster`` say where it runs."""

    order: ClassVar[int] = 2

    checkSubjobs: bool = True  # noqa: N815 (Ganga's field names)
    checkMaster: bool = True  # noqa: N815

    def applies(self, job: ProcessedJob) -> bool:
        """Whether it checks ``job``: a subjob with ``checkSubjobs``, else ``checkMaster``."""
        return self.checkSubjobs if job.master is not None else self.checkMaster

    def check(self, job: ProcessedJob) -> str | None:
        """None when ``job`` passes, else why it fails. Blocking (run in a worker thread);
        PostProcessError when the check cannot be made."""
        raise NotImplementedError


@dataclasses.dataclass(kw_only=True, repr=False)
class FileChecker(Checker):
    """Fail a job whose ``files`` contain a line matching one of ``searchStrings`` (regular
    expressions), or with ``failIfFound=False`` one whose files lack a match for each of them.
    ``filesMustExist`` fails a job where a pattern matches no file."""

    files: list[str] = dataclasses.field(default_factory=list)
    searchStrings: list[str] = dataclasses.field(default_factory=list)  # noqa: N815
    failIfFound: bool = True  # noqa: N815
    filesMustExist: bool = True  # noqa: N815

    def validate(self) -> None:
        if not self.files:
            raise JobSpecError(f"{self.label}.files", 'is empty; name the files to check, e.g. ["stdout"]')
        check_relative(self.files, f"{self.label}.files")
        if not self.searchStrings:
            raise JobSpecError(f"{self.label}.searchStrings",
                               'is empty; give regular expressions to look for, e.g. ["ERROR"]')
        for i, pattern in enumerate(self.searchStrings):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise JobSpecError(f"{self.label}.searchStrings[{i}]",
                                   f"{pattern!r} is not a regular expression: {exc}") from None

    def check(self, job: ProcessedJob) -> str | None:
        try:
            self.validate()
        except JobSpecError as exc:
            raise PostProcessError(str(exc)) from None
        base = str(job.outputdir)
        found: list[str] = []
        missing: list[str] = []
        for pattern in self.files:
            matches = sorted(p for p in glob.glob(os.path.join(glob.escape(base), pattern))
                             if os.path.isfile(p))
            found += matches
            if not matches:
                missing.append(pattern)
        if not found and len(job.subjobs):
            return None  # a master without outputs of its own: its subjobs were checked
        if missing and self.filesMustExist:
            return (f"{self.plugin_name}: no file matches {', '.join(map(repr, missing))} in "
                    f"{base} (filesMustExist=False ignores missing files)")
        expressions = [re.compile(p) for p in self.searchStrings]
        for path in found:
            seen = [False] * len(expressions)
            with open(path, errors="replace") as file:
                for line in file:
                    for i, expression in enumerate(expressions):
                        if not seen[i] and expression.search(line):
                            if self.failIfFound:
                                return (f"{self.plugin_name}: {self.searchStrings[i]!r} found "
                                        f"in {os.path.relpath(path, base)}")
                            seen[i] = True
            if not self.failIfFound and not all(seen):
                absent = [s for s, hit in zip(self.searchStrings, seen, strict=True) if not hit]
                return (f"{self.plugin_name}: {', '.join(map(repr, absent))} not found in "
                        f"{os.path.relpath(path, base)}")
        return None


@dataclasses.dataclass(kw_only=True, repr=False)
class CustomChecker(Checker):
    """Check with a function of your own: ``module`` is a Python file defining
    ``check(job) -> bool``; False fails the job. Anything else it returns, an exception, or a
    module that cannot be imported fails the job with that reason."""

    module: str = ""

    def validate(self) -> None:
        if not self.module:
            raise JobSpecError(f"{self.label}.module",
                               "is empty; give the path of a Python file defining check(job)")

    def check(self, job: ProcessedJob) -> str | None:
        function = load_module(self.module, "check", f"{self.label}.module")
        try:
            result = function(job)
        except Exception as exc:
            raise PostProcessError(f"{self.label}.module: check() raised {exc!r}") from exc
        if result is True:
            return None
        if result is False:
            return f"{self.plugin_name}: check() in {self.module} returned False"
        raise PostProcessError(f"{self.label}.module: check() returned {result!r}, not True or False")
