"""Snakemake adapter: one training job, primary or transfer, of either experiment
(rules image_primary/transfer/control, asr_primary, ser_primary, asr_to_ser, ser_to_asr,
ser_control, asr_control)."""

from gradual_transfer import startup
from gradual_transfer.experiment import run_job

sm = snakemake  # noqa: F821 - injected by Snakemake
startup.start(sm.log[0], sm.threads, cuda=sm.config["runtime"]["cuda"])
run_job(sm.params.training, dict(sm.input.items()), dict(sm.output.items()), sm.config["runtime"],
        cache_dir=f"{sm.config['outdir']}/cache", history=sm.log.history, tensorboard_dir=sm.params.tensorboard)
