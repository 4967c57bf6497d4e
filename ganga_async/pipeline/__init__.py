"""The pipeline: the stages that take a job from submission to a final state, and what they share.

::

    Engine.submit ─▶ accept ─▶ split ─▶ submit ─▶ backend drivers ─▶ monitor ─▶ finalise
                  (bounded memory streams between the stages; recovery feeds split and submit)

Each stage is an object in its own module with one job, started in the engine's task group.
They share a :class:`~ganga_async.pipeline.context.Context` (repository, recorder, registry of
live jobs, drivers, ShareRef, credentials), never the engine. Stages turn I/O into news for
the state machine (:mod:`ganga_async.model.machine`) and carry out what it decides through the
:class:`~ganga_async.pipeline.context.Recorder`: persist, publish, wake waiters.
"""
