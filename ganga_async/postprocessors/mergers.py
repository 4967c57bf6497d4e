"""Mergers: one file from the same output of many subjobs.

A merger attached to a job runs once, on the master, when every subjob is final (with
``ignorefailed`` also when some failed or were killed), and writes into the master's output
directory. ``TextMerger().merge(jobs, outputdir)`` and ``job.merge()`` merge by hand.

For each name its ``files`` patterns match in the subjobs' output directories the merger
writes ``<outputdir>/<name>`` and ``<name>.merge_summary`` (the inputs, in order, or the
error). Both are written under a temporary name and renamed when complete, so a merge cut
short (an engine killed in the middle) leaves no half-written result; the engine redoes it.
"""

from __future__ import annotations

import abc
import dataclasses
import glob
import gzip
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, ClassVar

from .._exceptions import JobSpecError, PostProcessError
from ..config import Config, load_config
from .base import PostProcessor, ProcessedJob, check_relative, load_module

__all__ = ["Merger", "TextMerger", "CustomMerger", "SmartMerger", "merge_inputs"]

_MERGEABLE = ("completed",)
_SKIPPABLE = ("failed", "killed")


@dataclasses.dataclass(kw_only=True, repr=False)
class Merger(PostProcessor):
    """Base class of mergers: ``files`` (names or glob patterns in each subjob's output
    directory), ``ignorefailed`` (leave out failed and killed subjobs and missing files
    instead of failing), ``overwrite`` (replace an existing result)."""

    order: ClassVar[int] = 1

    files: list[str] = dataclasses.field(default_factory=list)
    ignorefailed: bool = False
    overwrite: bool = False

    def validate(self) -> None:
        check_relative(self.files, f"{self.label}.files")

    def output_name(self, name: str) -> str:
        """The name of the result of merging files called ``name``."""
        return name

    @abc.abstractmethod
    def mergefiles(self, inputs: list[str], output: Path) -> None:
        """Write the merge of ``inputs`` (paths) to ``output``; raise PostProcessError on
        failure."""

    def merge(self, jobs: ProcessedJob | Sequence[ProcessedJob],
              outputdir: str | os.PathLike[str] | None = None, *, ignorefailed: bool | None = None,
              overwrite: bool | None = None, config: Config | None = None) -> list[Path]:
        """Merge the outputs of ``jobs`` (a list of jobs, or one job: its subjobs) into
        ``outputdir`` (default: the job's own output directory, or ``[Mergers]
        merge_output_dir`` for a list); returns the files written. Blocking: the engine calls
        it in a worker thread. Raises PostProcessError saying why the merge cannot be done."""
        ignorefailed = self.ignorefailed if ignorefailed is None else ignorefailed
        overwrite = self.overwrite if overwrite is None else overwrite
        self.validate()
        if not isinstance(jobs, Sequence):
            master = jobs
            outputdir = master.outputdir if outputdir is None else outputdir
            jobs = [master.subjobs[i] for i in range(len(master.subjobs))] or [master]
        if outputdir is None:
            outputdir = default_merge_dir(config)
        target = Path(outputdir).expanduser()
        grouped = merge_inputs(self, jobs, ignorefailed)
        written = []
        for name, inputs in grouped.items():
            output = target / self.output_name(name)
            if str(output) in inputs:
                raise PostProcessError(f"{self.label}: the result {output} would be one of its "
                                       "own inputs; merge into another directory")
            if output.exists() and not overwrite:
                raise PostProcessError(f"{self.label}: {output} exists; move it away or set "
                                       "overwrite=True")
            output.parent.mkdir(parents=True, exist_ok=True)
            try:
                _atomic(output, lambda tmp, inputs=inputs: self.mergefiles(inputs, tmp))
            except Exception as exc:
                message = str(exc) if isinstance(exc, PostProcessError) else (
                    f"{self.label}: merging into {output} failed: {exc!r}")
                _write_summary(output, ["# -- Error in Merge -- #", f"\t{message}"])
                if isinstance(exc, PostProcessError):
                    raise
                raise PostProcessError(message) from exc
            _write_summary(output, ["# -- List of files merged -- #", *inputs,
                                    "# -- End of list -- #"])
            written.append(output)
        return written


def default_merge_dir(config: Config | None) -> Path:
    """``[Mergers] merge_output_dir``, or ``<gangadir>/merge_results`` when it is empty."""
    config = config if config is not None else load_config()
    configured = str(config["Mergers"]["merge_output_dir"])
    return Path(configured).expanduser() if configured else config.gangadir / "merge_results"


def merge_inputs(merger: Merger, jobs: Sequence[ProcessedJob], ignorefailed: bool
                 ) -> dict[str, list[str]]:
    """``{name relative to an output directory: [the matching files, in job order]}``;
    PostProcessError for a job in a status that cannot be merged or a pattern matching
    nothing (unless ``ignorefailed``)."""
    grouped: dict[str, list[str]] = {}
    for job in jobs:
        status = str(job.status)
        if status not in _MERGEABLE:
            if status in _SKIPPABLE and ignorefailed:
                continue
            hint = " (ignorefailed=True leaves it out)" if status in _SKIPPABLE else ""
            raise PostProcessError(f"{merger.label}: job {job.fqid} is {status}, so the merge "
                                   f"cannot go on{hint}")
        base = str(job.outputdir)
        for pattern in merger.files:
            if glob.has_magic(pattern):
                found = [(os.path.relpath(p, base), p) for p in sorted(
                    glob.glob(os.path.join(glob.escape(base), pattern))) if os.path.isfile(p)]
            else:  # a plain name: no directory listing (10^5 subjobs: 10^5 listings saved)
                path = os.path.join(base, pattern)
                found = [(os.path.normpath(pattern), path)] if os.path.isfile(path) else []
            if not found and not ignorefailed:
                raise PostProcessError(f"{merger.label}: no file matches {pattern!r} in job "
                                       f"{job.fqid} (ignorefailed=True leaves it out)")
            for name, path in found:
                grouped.setdefault(name, []).append(path)
    return grouped


def _atomic(output: Path, write: Any) -> None:
    """Call ``write(tmp)`` with a temporary path beside ``output`` (same extension), then
    rename it to ``output``; nothing is left behind on failure."""
    tmp = output.with_name(f".tmp-{os.getpid()}-{output.name}")
    try:
        write(tmp)
        if not tmp.exists():
            raise PostProcessError(f"the merge wrote no {output.name}")
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)


def _write_summary(output: Path, lines: list[str]) -> None:
    summary = output.with_name(output.name + ".merge_summary")
    _atomic(summary, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))


@dataclasses.dataclass(kw_only=True, repr=False)
class TextMerger(Merger):
    """Concatenate text files, each after a header line naming it (Ganga's format);
    ``compress=True`` writes ``<name>.gz``. Gzipped inputs are read uncompressed."""

    compress: bool = False

    def output_name(self, name: str) -> str:
        return name + ".gz" if self.compress and not name.lower().endswith(".gz") else name

    def mergefiles(self, inputs: list[str], output: Path) -> None:
        gzipped = self.compress or output.name.lower().endswith(".gz")
        raw = open(output, "wb")  # noqa: SIM115 (closed below, after the gzip stream)
        try:
            out: IO[bytes] = (gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6)  # type: ignore[assignment]
                              if gzipped else raw)
            out.write(f"# Ganga TextMergeTool - {time.asctime()} #\n".encode())
            for path in inputs:
                out.write(f"# Start of file {path} #\n".encode())
                opener = gzip.open if path.lower().endswith(".gz") else open
                last = b"\n"
                with opener(path, "rb") as source:
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
                        last = chunk[-1:]
                if last != b"\n":
                    out.write(b"\n")
            out.write(b"# Ganga Merge Ended Successfully #\n")
            if out is not raw:
                out.close()
        finally:
            raw.close()


@dataclasses.dataclass(kw_only=True, repr=False)
class CustomMerger(Merger):
    """Merge with a function of your own: ``module`` is a Python file defining
    ``mergefiles(file_list, output_file)``, which writes ``output_file`` and returns True
    (or None); False or an exception fails the merge."""

    module: str = ""

    def validate(self) -> None:
        super().validate()
        if not self.module:
            raise JobSpecError(f"{self.label}.module", "is empty; give the path of a Python "
                               "file defining mergefiles(file_list, output_file)")

    def mergefiles(self, inputs: list[str], output: Path) -> None:
        function = load_module(self.module, "mergefiles", f"{self.label}.module")
        try:
            result = function(list(inputs), str(output))
        except Exception as exc:
            raise PostProcessError(f"{self.label}.module: mergefiles() raised {exc!r}") from exc
        if result is False:
            raise PostProcessError(f"{self.label}.module: mergefiles() returned False")


@dataclasses.dataclass(kw_only=True, repr=False)
class SmartMerger(Merger):
    """Merge each file with the merger its extension is associated with in ``[Mergers]
    associate`` (``{txt = "TextMerger", log = "TextMerger"}``); ``stdout`` and ``stderr``
    with ``[Mergers] std_merge``. A file with no associated merger fails the merge (with
    ``ignorefailed``: is left out). With no ``files`` it merges stdout, stderr and the job's
    plain ``outputfiles`` names."""

    def mergefiles(self, inputs: list[str], output: Path) -> None:
        raise PostProcessError(f"{self.label}: merges through the mergers of [Mergers] associate")

    def merge(self, jobs: ProcessedJob | Sequence[ProcessedJob],
              outputdir: str | os.PathLike[str] | None = None, *, ignorefailed: bool | None = None,
              overwrite: bool | None = None, config: Config | None = None) -> list[Path]:
        from .. import _plugins

        config = config if config is not None else load_config()
        ignorefailed = self.ignorefailed if ignorefailed is None else ignorefailed
        self.validate()
        files = list(self.files) or _guess_files(jobs)
        associate: dict[str, str] = dict(config["Mergers"]["associate"])
        by_merger: dict[str, list[str]] = {}
        for name in files:
            ext = os.path.splitext(name)[1].lstrip(".").lower()
            chosen = config["Mergers"]["std_merge"] if name in ("stdout", "stderr") and not ext \
                else associate.get(ext) if ext else None
            if chosen is None:
                if ignorefailed:
                    continue
                raise PostProcessError(
                    f"{self.label}.files: no merger for {name!r}; associate its extension in "
                    "[Mergers] associate, or set ignorefailed=True to leave it out")
            by_merger.setdefault(str(chosen), []).append(name)
        written = []
        for plugin, names in by_merger.items():
            cls = _plugins.load("postprocessor", plugin)
            if not (isinstance(cls, type) and issubclass(cls, Merger)) or cls is SmartMerger:
                raise PostProcessError(f"[Mergers] associate: {plugin!r} is not a merger")
            merger = cls(files=names, ignorefailed=ignorefailed,
                         overwrite=self.overwrite if overwrite is None else overwrite)
            written += merger.merge(jobs, outputdir, config=config)
        return written


def _guess_files(jobs: ProcessedJob | Sequence[ProcessedJob]) -> list[str]:
    first = jobs[0] if isinstance(jobs, Sequence) and jobs else jobs
    outputfiles = list(getattr(first, "outputfiles", []))
    plain = [f for f in outputfiles if not glob.has_magic(f)]
    return ["stdout", "stderr", *plain]
