"""The workspace helpers peek() reads through."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganga_async._workspace import listing, tail_of

pytestmark = pytest.mark.anyio


async def test_a_listing_of_work_leaves_out_an_emptied_scratch_directory(tmp_path: Path) -> None:
    """A Local slot empties its scratch directory before telling of its subjob's end and removes
    it only when the slot ends: peek() of a completed job must not list it."""
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    (tmp_path / "1234-0").mkdir()
    (tmp_path / "1234-1").mkdir()
    (tmp_path / "1234-1" / "kept.txt").write_text("x")
    (tmp_path / "notes.txt").write_text("y")
    assert sorted(await listing(tmp_path, "work/", skip_empty_dirs=True)) == [
        "work/1234-1", "work/notes.txt"]
    assert sorted(await listing(tmp_path, "")) == ["1234-0", "1234-1", "notes.txt"]
    assert await listing(tmp_path / "gone", "work/", skip_empty_dirs=True) == []


def test_a_tail_says_what_it_left_out(tmp_path: Path) -> None:
    path = tmp_path / "stdout"
    path.write_text("a" * 10 + "b" * 5)
    assert tail_of(path, 100) == "a" * 10 + "b" * 5
    text = tail_of(path, 5)
    assert text.endswith("\nbbbbb") and "first 10 of 15 bytes" in text and str(path) in text
