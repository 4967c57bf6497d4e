"""ShareDir names and the shared area: strict names, no escape, whole-or-nothing creation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ganga_async import ShareDir, ShareDirError
from ganga_async.prepared.sharedir import PARTIAL_PREFIX, SharedArea

pytestmark = pytest.mark.anyio

NAME = "conf-0f6c3b8e-1d2a-4c5b-9e8f-7a6b5c4d3e2f"


@pytest.mark.parametrize("bad", ["../..", "/etc", "conf-x", f"{NAME}/..", f"../{NAME}",
                                 NAME.upper(), f"{NAME}\n", "", 42])
def test_a_name_that_is_not_conf_uuid_is_refused_saying_what_is_expected(bad: object) -> None:
    with pytest.raises(ShareDirError, match="is not a ShareDir name: expected conf-<uuid>"):
        ShareDir(name=bad)  # type: ignore[arg-type]


def test_a_sharedir_shows_as_ganga_shows_it_and_round_trips() -> None:
    sharedir = ShareDir(name=NAME, files={"./run.sh": "run.sh"})
    assert repr(sharedir) == f"ShareDir(name='{NAME}', subdir='.')"
    assert ShareDir.from_dict(sharedir.to_dict()) == sharedir
    assert ShareDir.from_dict(sharedir.to_dict()).files == {"./run.sh": "run.sh"}


@pytest.mark.parametrize("field", [{"subdir": "../x"}, {"subdir": "/abs"},
                                   {"files": {"a": "../../etc/passwd"}}])
def test_paths_inside_a_sharedir_must_stay_inside_it(field: dict[str, object]) -> None:
    with pytest.raises(ShareDirError, match="must be a relative path inside the ShareDir"):
        ShareDir(name=NAME, **field)  # type: ignore[arg-type]


def test_a_symlink_leading_out_of_the_shared_area_is_refused_and_left_alone(tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data").write_text("keep me")
    area = SharedArea(tmp_path / "shared" / "me")
    area.root.mkdir(parents=True)
    (area.root / NAME).symlink_to(outside)
    with pytest.raises(ShareDirError, match="is a symbolic link"):
        area.path(NAME)
    assert (outside / "data").read_text() == "keep me"


async def test_removing_through_a_symlink_deletes_nothing(tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    area = SharedArea(tmp_path / "shared")
    area.root.mkdir()
    (area.root / NAME).symlink_to(outside)
    with pytest.raises(ShareDirError):
        await area.remove(NAME)
    with pytest.raises(ShareDirError):
        await area.ls(NAME)
    assert outside.is_dir() and (area.root / NAME).is_symlink()
    assert await area.names() == []


async def test_create_copies_the_files_under_their_names_and_ls_shows_the_tree(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "input.txt").write_text(d)
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    area = SharedArea(tmp_path / "shared")
    sharedir = await area.create({"./run.sh": str(script), "a/input.txt": str(tmp_path / "a/input.txt"),
                                  "b/input.txt": str(tmp_path / "b/input.txt")})
    path = area.path(sharedir.name)
    assert sharedir.files == {"./run.sh": "run.sh", "a/input.txt": "input.txt",
                              "b/input.txt": "1/input.txt"}
    assert (path / "1" / "input.txt").read_text() == "b"
    assert os.access(path / "run.sh", os.X_OK)
    assert await area.ls(sharedir.name) == "\n".join([
        f"{sharedir.name}/", "|  1/", "|  |  input.txt", "|  input.txt", "|  run.sh"])
    assert await area.names() == [sharedir.name]


async def test_a_copy_failing_part_way_leaves_no_directory_at_all(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("x")
    area = SharedArea(tmp_path / "shared")
    with pytest.raises(ShareDirError, match="nothing was kept") as caught:
        await area.create({"good.txt": str(good), "gone.txt": str(tmp_path / "gone.txt")})
    assert "gone.txt" in str(caught.value)
    assert list(area.root.iterdir()) == []


async def test_stale_partial_directories_are_removed_fresh_ones_kept(tmp_path: Path) -> None:
    area = SharedArea(tmp_path / "shared")
    stale = area.root / f"{PARTIAL_PREFIX}{NAME}"
    fresh = area.root / f"{PARTIAL_PREFIX}{NAME[:-1]}0"
    for d in (stale, fresh):
        d.mkdir(parents=True)
    os.utime(stale, (1, 1))
    assert await area.remove_stale_partials() == [stale.name]
    assert not stale.exists() and fresh.exists()
