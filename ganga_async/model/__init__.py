"""The job model: what a job is and the rules of how its state changes, with no I/O.

:class:`~ganga_async.model.job.Job` is the description a user fills in (application, backend,
splitter, files, credentials) with read-only state; a master keeps its subjobs in a compact
:class:`~ganga_async.model.subjobs.SubjobTable`; its state is a
:class:`~ganga_async.model.record.JobRecord` that only :mod:`ganga_async.model.machine` changes
the status of. Nothing here touches a file, a database or an event loop,
so the model is unit-tested on its own in milliseconds.
"""
