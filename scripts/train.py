"""Snakemake adapter: one training job, primary, transfer or control, of any experiment (the
rules of models.smk); the kind of its target's dataset decides the task's data and scoring."""

from gradual_transfer import startup
from gradual_transfer.data.kinds import task_kind
from gradual_transfer.experiment import run_job

sm = snakemake  # noqa: F821 - injected by Snakemake
startup.start(sm.log[0], sm.threads, cuda=sm.config["runtime"]["cuda"])
run_job(sm.params.training, dict(sm.input.items()), dict(sm.output.items()), sm.config["runtime"],
        kind=task_kind(sm.config, sm.params.training["job"]["target"]), cache_dir=f"{sm.config['outdir']}/cache",
        history=sm.log.history, tensorboard_dir=sm.params.tensorboard)
