"""Snakemake adapter: per-coefficient normalisation statistics (rules train_stats, fold_stats)."""

from gradual_transfer import startup
from gradual_transfer.data.frontend import write_stats

startup.start(snakemake.log[0])  # noqa: F821 - injected by Snakemake
write_stats(snakemake.input[0], snakemake.output[0], snakemake.params.speakers)  # noqa: F821
