"""The task-specific parts of a training job, one module per experiment: its batch sources, how a
model is scored, and what it writes after training (:mod:`~gradual_transfer.tasks.images`,
:mod:`~gradual_transfer.tasks.speech`). :func:`gradual_transfer.experiment.run_job` picks one by
the job's experiment; the datasets' readers live in :mod:`gradual_transfer.data`."""
