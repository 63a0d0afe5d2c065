"""Snakemake adapter: realign TIMIT's train and dev targets with one pass's aligner (rule realign_asr)."""

from gradual_transfer import startup
from gradual_transfer.realign import realign

sm = snakemake  # noqa: F821 - injected by Snakemake
startup.start(sm.log[0], sm.threads, cuda=sm.config["runtime"]["cuda"])
realign(
    model=sm.input.model,
    current={"train": sm.input.train, "dev": sm.input.dev},
    labelled={"train": sm.input.labelled_train, "dev": sm.input.labelled_dev},
    stats=sm.input.stats,
    hmm_file=sm.input.hmm,
    outputs={split: {"features": sm.output[split], "ali": sm.output[f"{split}_ali"],
                     "ali_scp": sm.output[f"{split}_scp"]} for split in ("train", "dev")},
    report=sm.output.report,
    acoustic_scale=sm.params.realign["acoustic_scale"],
    self_loop_scale=sm.params.realign["self_loop_scale"],
    transition_scale=sm.params.realign["transition_scale"],
    window=sm.params.realign["window"],
    context=sm.params.realign["context"],
    runtime=sm.config["runtime"],
)
