"""Snakemake adapter: the screen's JSON files → its tables (rules estimates_table,
similarity_table): every estimate, and the similarity per layer group."""

from gradual_transfer import startup
from gradual_transfer.agreement import estimates_table, similarity_table
from gradual_transfer.report import write_table_page
from gradual_transfer.tables import write_tsv

sm = snakemake  # noqa: F821 - injected by Snakemake
startup.start(sm.log[0])
if "estimates" in sm.output.keys():
    write_tsv(estimates_table(list(sm.input.estimates), sm.params.layer_groups), sm.output.estimates)
    write_table_page(sm.output.estimates, sm.output.estimates_page)
write_tsv(similarity_table(list(sm.input.estimates), list(sm.input.get("similarity", []))), sm.output.similarity)
write_table_page(sm.output.similarity, sm.output.similarity_page)
