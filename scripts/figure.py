"""Snakemake adapter: a transfer figure from the results table (rules figure_*): the test split,
and the validation split as its supplementary figure."""

import pandas as pd

from gradual_transfer import startup
from gradual_transfer.figures import figure_transfer

startup.start(snakemake.log[0])  # noqa: F821 - injected by Snakemake
table = pd.read_parquet(snakemake.input[0])  # noqa: F821
for split, png, pdf in (("test", snakemake.output.png, snakemake.output.pdf),  # noqa: F821
                        ("validation", snakemake.output.validation_png, snakemake.output.validation_pdf)):  # noqa: F821
    figure_transfer(
        table,
        snakemake.params.experiment,  # noqa: F821
        snakemake.params.lc,  # noqa: F821
        snakemake.params.title,  # noqa: F821
        png,
        pdf,
        dpi=snakemake.params.dpi,  # noqa: F821
        split=split,
        comparable=snakemake.params.comparable,  # noqa: F821
    )
