"""Mergers by hand on outputs on disk: Ganga's options (ignorefailed, overwrite, compress),
SmartMerger's associations, CustomMerger's module, and the summary of every merge."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path
from typing import Any

import pytest

from ganga_async import Config, CustomMerger, PostProcessError, SmartMerger, TextMerger


@dataclasses.dataclass
class Done:
    """A finished job as a merger reads it: its status and output directory (the mergers'
    ``ProcessedJob``); the engine's own jobs are tested in test_pipeline.py."""

    fqid: str
    status: str
    outputdir: Path
    name: str = ""
    master: Any = None
    subjobs: tuple[()] = ()
    outputfiles: tuple[str, ...] = ()


def jobs(tmp_path: Path, n: int, statuses: dict[int, str] | None = None,
         files: tuple[str, ...] = ("stdout", "data.txt", "hist.root")) -> list[Done]:
    made = []
    for i in range(n):
        out = tmp_path / "jobs" / str(i)
        out.mkdir(parents=True)
        for name in files:
            (out / name).write_text(f"{name} of {i}\n")
        made.append(Done(f"7.{i}", (statuses or {}).get(i, "completed"), out))
    return made


def test_a_failed_subjob_stops_the_merge_unless_ignorefailed(tmp_path: Path) -> None:
    done = jobs(tmp_path, 3, {1: "failed"})
    with pytest.raises(PostProcessError, match="job 7.1 is failed, so the merge cannot go on"):
        TextMerger(files=["stdout"]).merge(done, tmp_path / "out")
    [result] = TextMerger(files=["stdout"], ignorefailed=True).merge(done, tmp_path / "out")
    assert "stdout of 1" not in result.read_text() and "stdout of 2" in result.read_text()


def test_an_existing_result_is_kept_unless_overwrite(tmp_path: Path) -> None:
    done = jobs(tmp_path, 2)
    TextMerger(files=["stdout"]).merge(done, tmp_path / "out")
    with pytest.raises(PostProcessError, match="exists; move it away or set overwrite=True"):
        TextMerger(files=["stdout"]).merge(done, tmp_path / "out")
    assert TextMerger(files=["stdout"], overwrite=True).merge(done, tmp_path / "out")


def test_compress_writes_gzip_and_gzipped_inputs_are_read(tmp_path: Path) -> None:
    done = jobs(tmp_path, 2)
    [result] = TextMerger(files=["data.txt"], compress=True).merge(done, tmp_path / "gz")
    assert result.name == "data.txt.gz"
    with gzip.open(result, "rt") as file:
        assert "data.txt of 1" in file.read()
    (done[0].outputdir / "z.gz").write_bytes(gzip.compress(b"zipped\n"))
    (done[1].outputdir / "z.gz").write_bytes(gzip.compress(b"also\n"))
    [result] = TextMerger(files=["z.gz"]).merge(done, tmp_path / "gz2")
    with gzip.open(result, "rt") as file:
        assert "zipped\n" in file.read()


def test_smart_merger_follows_the_configured_associations(tmp_path: Path, config: Config) -> None:
    done = jobs(tmp_path, 2)
    written = SmartMerger(files=["stdout", "data.txt"]).merge(done, tmp_path / "out", config=config)
    assert sorted(p.name for p in written) == ["data.txt", "stdout"]
    with pytest.raises(PostProcessError, match=r"no merger for 'hist.root'; associate its extension"):
        SmartMerger(files=["hist.root"]).merge(done, tmp_path / "out2", config=config)
    config["Mergers"]["associate"] = {"root": "TextMerger"}
    [written_root] = SmartMerger(files=["hist.root"]).merge(done, tmp_path / "out3", config=config)
    assert "hist.root of 1" in written_root.read_text()


def test_custom_merger_runs_the_users_function_and_reports_its_failure(tmp_path: Path) -> None:
    module = tmp_path / "mymerge.py"
    module.write_text("def mergefiles(file_list, output_file):\n"
                      "    with open(output_file, 'w') as out:\n"
                      "        out.write(str(len(file_list)))\n    return True\n")
    done = jobs(tmp_path, 3)
    [result] = CustomMerger(files=["data.txt"], module=str(module)).merge(done, tmp_path / "c")
    assert result.read_text() == "3"
    module.write_text("def mergefiles(file_list, output_file):\n    raise ValueError('bad input')\n")
    with pytest.raises(PostProcessError, match=r"mergefiles\(\) raised ValueError\('bad input'\)"):
        CustomMerger(files=["data.txt"], module=str(module)).merge(done, tmp_path / "d")
    summary = (tmp_path / "d" / "data.txt.merge_summary").read_text()
    assert summary.startswith("# -- Error in Merge -- #") and "bad input" in summary
    assert not (tmp_path / "d" / "data.txt").exists()
    with pytest.raises(PostProcessError, match="does not exist"):
        CustomMerger(files=["data.txt"], module=str(tmp_path / "none.py")).merge(done, tmp_path / "e")
