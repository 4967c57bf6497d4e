"""A job description holding long lists (a splitter's arguments, an application's arguments)
is encoded a slice at a time, so the engine's loop runs between slices, and it is stored and
read back exactly as a short one."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import anyio
import pytest

from ganga_async import ArgSplitter, Config, Engine, Executable, Job, Status
from ganga_async.persistence import encoding

pytestmark = pytest.mark.anyio

LONG = encoding.SLICE * 2 + 1


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize(("value", "long"), [
    ({}, False), ([], False), ("text", False), (3, False), (None, False),
    ({"a": [1, 2.5, None, True, "é"]}, False),
    ([list(range(encoding.SLICE))], False),
    ([[str(i)] for i in range(LONG)], True),
    ({"splitter": {"type": "ArgSplitter", "args": [[str(i), "x"] for i in range(LONG)]},
      "inputfiles": [], "env": {"A": list(range(LONG))}}, True),
    ([list(range(LONG)), {"b": list(range(encoding.SLICE))}], True),
    ({"short": [{"long": [str(i) for i in range(LONG)]}]}, True),
])
async def test_the_text_is_json_dumps_own(value: Any, long: bool) -> None:
    """Sliced or not, the text is the one ``json.dumps`` gives; a value without a long list
    is encoded at once."""
    assert await encoding.encode(value) == _dumps(value)
    assert encoding.encode_small(value) == (None if long else _dumps(value))


async def loop_turns(work: Awaitable[object]) -> int:
    """How many times another task ran while ``work`` was awaited."""
    turns = 0

    async def other() -> None:
        nonlocal turns
        while True:
            turns += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        await anyio.lowlevel.checkpoint()
        before = turns
        await work
        tg.cancel_scope.cancel()
    return turns - before


async def test_the_loop_runs_between_the_slices_of_a_long_list() -> None:
    assert await loop_turns(encoding.encode({"args": [[str(i)] for i in range(encoding.SLICE * 5)]})) >= 4
    assert await loop_turns(encoding.encode([{"inner": list(range(encoding.SLICE * 3))}])) >= 2


PAD = " " * encoding.SMALL_TEXT
"""Spaces that make any text long enough to be decoded a slice at a time."""


@pytest.mark.parametrize("value", [
    {}, [], "text", 3, None, {"a": [1, 2.5, None, True, "é\n"], "b": {}},
    {"splitter": {"type": "ArgSplitter", "args": [[str(i), "x"] for i in range(LONG)]},
     "inputfiles": [], "env": {"A": list(range(LONG))}},
    [{"long": [str(i) for i in range(LONG)]}, [[]], {"x": [{"y": 1}]}],
])
async def test_a_long_text_decodes_as_json_loads_does(value: Any) -> None:
    for text in (_dumps(value) + PAD, json.dumps(value, indent=2) + PAD, PAD + _dumps(value)):
        assert await encoding.decode(text) == json.loads(text) == value
    assert await encoding.decode(_dumps(value)) == value


@pytest.mark.parametrize("bad", ['{"a": [1, 2,]}', '{"a" 1}', "[1] x", '{"a": [1 2]}',
                                 "{'a': 1}", '{"a": [1', ""])
async def test_a_bad_long_text_raises_what_json_loads_raises(bad: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        await encoding.decode(bad + PAD)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(bad + PAD)
    assert (ours.value.msg, ours.value.pos) == (theirs.value.msg, theirs.value.pos)


async def test_the_loop_runs_between_the_slices_of_a_long_list_decoded() -> None:
    text = _dumps({"args": [[str(i)] for i in range(encoding.SLICE * 5)]}) + PAD
    assert await loop_turns(encoding.decode(text)) >= 4


@pytest.mark.parametrize("bad", [{"a": {1, 2}}, {"a": [*range(LONG), object()]}])
async def test_a_value_that_cannot_be_stored_raises_as_json_does(bad: Any) -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        await encoding.encode(bad)


async def test_a_circular_description_is_refused() -> None:
    cycle: dict[str, Any] = {"a": list(range(LONG))}
    cycle["b"] = cycle
    with pytest.raises(ValueError, match="Circular reference"):
        await encoding.encode(cycle)


def _stored_spec(path: Path, job_id: int) -> dict[str, Any]:
    with sqlite3.connect(path) as db:
        (text,) = db.execute("SELECT spec FROM jobs WHERE id=?", (job_id,)).fetchone()
    spec: dict[str, Any] = json.loads(text)
    return spec


async def _stored_exe(engine: Engine, job: Job) -> str:
    await engine.repository.flush()
    async with engine.repository.db.execute(
        "SELECT json_extract(spec, '$.application.exe') FROM jobs WHERE id=?", (job.id,)
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def test_a_long_description_round_trips_through_add_edit_submit_and_a_restart(
    gangadir: Path, config: Config
) -> None:
    args = [[str(i)] for i in range(LONG)]
    many = [str(i) for i in range(LONG)]
    async with Engine(gangadir, config=config) as engine:
        split = await engine.add(Job(application=Executable(exe="/bin/echo"),
                                     splitter=ArgSplitter(args=args)))
        # Two edits of a new job in a row: each a write begun; the last one is what is kept.
        split.application = Executable(exe="/bin/false")
        split.name = "edited"
        split.application = Executable(exe="/bin/true")
        with anyio.fail_after(30):  # written once encoded, while the engine runs
            while await _stored_exe(engine, split) != "/bin/true":  # noqa: ASYNC110 (a row, no event)
                await anyio.sleep(0.01)
        single = Job(application=Executable(exe="/bin/true", args=many))
        await engine.submit(single)
        await engine.wait(single, timeout=60)
        assert single.status is Status.COMPLETED
    for job in (split, single):
        assert job.id is not None
        assert _stored_spec(engine.repository.path, job.id) == job.spec()
    async with Engine(gangadir, config=config) as engine:
        again = await engine.get(split.id)
        assert again.name == "edited"
        assert again.application.exe == "/bin/true"  # type: ignore[attr-defined]
        assert again.splitter is not None
        assert again.splitter.args == args  # type: ignore[attr-defined]
        copy = again.copy()
        assert copy.splitter.args == args  # type: ignore[union-attr]
        ran = await engine.get(single.id)
        assert ran.application.args == many  # type: ignore[attr-defined]
