"""The job model: what a job is and the rules of how its state changes, with no I/O.

:class:`~ganga_async.model.job.Job` is the description a user fills in (application, backend,
splitter, files, credentials) with read-only state; a master keeps its subjobs in a compact
:class:`~ganga_async.model.subjobs.SubjobTable`. The workspace paths of a job and its subjobs
are pure functions of its directory. Nothing here touches a file, a database or an event loop,
so the model is unit-tested on its own in milliseconds.
"""
