"""Snakemake adapter: the ASR primaries' per-speaker PER → one table (rule per_speaker_table)."""

from gradual_transfer import startup
from gradual_transfer.report import write_table_page
from gradual_transfer.tables import per_speaker_table, write_tsv

startup.start(snakemake.log[0])  # noqa: F821 - injected by Snakemake
write_tsv(
    per_speaker_table(list(snakemake.input), snakemake.params.labels),  # noqa: F821
    snakemake.output.tsv,  # noqa: F821
)
write_table_page(snakemake.output.tsv, snakemake.output.page)  # noqa: F821
