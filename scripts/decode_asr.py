"""Snakemake adapter: tune on dev, decode dev and test, score PER (rule decode_asr)."""

from pathlib import Path

from gradual_transfer import startup
from gradual_transfer.decoding import decode_and_score

sm = snakemake  # noqa: F821 - injected by Snakemake
startup.start(sm.log[0])
decode_and_score(
    hmm_file=sm.input.hmm,
    posteriors={"dev": sm.input.dev_scp, "test": sm.input.test_scp},
    references={"dev": sm.input.dev_ref, "test": sm.input.test_ref},
    acoustic_scales=sm.params.grid["acoustic_scales"],
    insertion_penalties=sm.params.grid["insertion_penalties"],
    self_loop_scale=sm.params.grid["self_loop_scale"],
    out_dir=Path(sm.output.metrics).parent,
    meta=sm.params.job,
)
