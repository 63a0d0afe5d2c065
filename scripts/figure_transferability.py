"""Snakemake adapter: the transferability table → Figure 3 (rule figure_transferability)."""

import pandas as pd

from gradual_transfer import startup
from gradual_transfer.figures import figure_transferability

startup.start(snakemake.log[0])  # noqa: F821 - injected by Snakemake
figure_transferability(
    pd.read_csv(snakemake.input[0], sep="\t"),  # noqa: F821
    snakemake.params.title,  # noqa: F821
    snakemake.output.png,  # noqa: F821
    snakemake.output.pdf,  # noqa: F821
    dpi=snakemake.params.dpi,  # noqa: F821
)
