"""Snakemake adapter: one similarity job of the screen (rule similarity): the CKA per layer group
of every transfer of a curve with the model it started from."""

from gradual_transfer import startup
from gradual_transfer.data.kinds import task_kind
from gradual_transfer.screen import run_similarity

sm = snakemake  # noqa: F821 - injected by Snakemake
startup.start(sm.log[0], sm.threads)
run_similarity(sm.params.screen, dict(sm.input.items()), sm.output[0],
               kind=task_kind(sm.config, sm.params.screen["screen"]["target"]))
