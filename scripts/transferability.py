"""Snakemake adapter: the results table → the transferability table (rule transferability)."""

import pandas as pd

from gradual_transfer import startup
from gradual_transfer.report import write_table_page
from gradual_transfer.tables import transferability_table, write_tsv

startup.start(snakemake.log[0])  # noqa: F821 - injected by Snakemake
write_tsv(
    transferability_table(pd.read_parquet(snakemake.input[0]), **snakemake.params.settings),  # noqa: F821
    snakemake.output.tsv,  # noqa: F821
)
write_table_page(snakemake.output.tsv, snakemake.output.page)  # noqa: F821
