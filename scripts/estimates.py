"""Snakemake adapter: one estimates job of the screen (rule estimates): LogME, shrinkage H-score,
linear probe and LEEP at every swept l_c, and the primaries' similarity per layer group."""

from gradual_transfer import startup
from gradual_transfer.data.kinds import task_kind
from gradual_transfer.screen import run_estimates

sm = snakemake  # noqa: F821 - injected by Snakemake
startup.start(sm.log[0], sm.threads)
run_estimates(sm.params.screen, dict(sm.input.items()), sm.output[0],
              kind=task_kind(sm.config, sm.params.screen["screen"]["target"]))
