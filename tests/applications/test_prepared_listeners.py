"""An application tells the listeners of its prepared state (the engine's bookkeeping of
ShareDir references) when it is prepared, unprepared or copied; copies start without any."""

from __future__ import annotations

import uuid

import pytest

from ganga_async import Application, Executable, JobStateError, ShareDir
from ganga_async._component import freeze


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, ShareDir | None]] = []

    def prepared_changed(self, app: Application) -> None:
        self.seen.append(("changed", app.is_prepared))

    def copied(self, original: Application, clone: Application) -> None:
        self.seen.append(("copied", clone.is_prepared))


def sharedir() -> ShareDir:
    return ShareDir(name=f"conf-{uuid.uuid4()}")


def test_listeners_hear_of_preparing_copying_and_unpreparing() -> None:
    app, recorder, made = Executable(), Recorder(), sharedir()
    app.add_prepared_listener(recorder)
    app.add_prepared_listener(recorder)
    app.mark_prepared(made)
    clone = app.copy()
    unprepared = app.copy(unprepare=True)
    app.unprepare()
    assert recorder.seen == [("changed", made), ("copied", made), ("changed", None)]
    assert clone.is_prepared == made and unprepared.is_prepared is None
    assert clone.prepared_listeners() == () and unprepared.prepared_listeners() == ()


def test_a_removed_listener_hears_nothing_more() -> None:
    app, recorder = Executable(), Recorder()
    app.add_prepared_listener(recorder)
    app.remove_prepared_listener(recorder)
    app.mark_prepared(sharedir())
    assert recorder.seen == [] and app.prepared_listeners() == ()


def test_the_engine_may_unprepare_a_frozen_application_but_a_user_may_not() -> None:
    app, recorder, made = Executable(), Recorder(), sharedir()
    app.mark_prepared(made)
    app.add_prepared_listener(recorder)
    freeze(app, "job 3 is submitted")
    with pytest.raises(JobStateError, match="job 3 is submitted"):
        app.unprepare()
    assert app.is_prepared == made and recorder.seen == []
    app.mark_prepared(None)
    assert app.is_prepared is None and recorder.seen == [("changed", None)]
