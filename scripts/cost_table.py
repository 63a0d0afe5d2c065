"""Snakemake adapter: every training job's cost, and the screen's → the grid's device time (rule cost_table)."""

from gradual_transfer import startup
from gradual_transfer.cost import cost_table
from gradual_transfer.report import write_table_page
from gradual_transfer.io import write_text

startup.start(snakemake.log[0])  # noqa: F821 - injected by Snakemake
table = cost_table(list(snakemake.input.metrics), list(snakemake.input.screen))  # noqa: F821
write_text(snakemake.output.tsv, table.to_csv(sep="\t", index=False, float_format="%.4g"))  # noqa: F821
write_table_page(snakemake.output.tsv, snakemake.output.page)  # noqa: F821
