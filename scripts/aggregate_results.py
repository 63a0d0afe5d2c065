"""Snakemake adapter: every metrics.json → the long-form results table (rule aggregate_results)."""

from gradual_transfer import startup
from gradual_transfer.report import write_table_page
from gradual_transfer.tables import results_table, write_table

startup.start(snakemake.log[0])  # noqa: F821 - injected by Snakemake
write_table(
    results_table(list(snakemake.input)),  # noqa: F821
    snakemake.output.parquet,  # noqa: F821
    snakemake.output.tsv,  # noqa: F821
    snakemake.output.summary,  # noqa: F821
)
write_table_page(snakemake.output.tsv, snakemake.output.tsv_page)  # noqa: F821
write_table_page(snakemake.output.summary, snakemake.output.summary_page)  # noqa: F821
