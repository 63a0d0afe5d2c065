"""Snakemake adapter: a transfer figure from the results table (rules figure_*)."""

import pandas as pd

from gradual_transfer import startup
from gradual_transfer.figures import figure_transfer
from gradual_transfer.architectures import group_names

startup.start(snakemake.log[0])  # noqa: F821 - injected by Snakemake
figure_transfer(
    pd.read_parquet(snakemake.input[0]),  # noqa: F821
    snakemake.params.experiment,  # noqa: F821
    snakemake.params.lc,  # noqa: F821
    {arch: group_names(network) for arch, network in snakemake.params.networks.items()},  # noqa: F821
    snakemake.params.title,  # noqa: F821
    snakemake.output.png,  # noqa: F821
    snakemake.output.pdf,  # noqa: F821
    dpi=snakemake.params.dpi,  # noqa: F821
)
