"""Snakemake adapter: the estimates beside the measured transferability → Kendall's τ of each
estimate with the measured curves, and the screen's figure (rule estimate_agreement)."""

import pandas as pd

from gradual_transfer import startup
from gradual_transfer.agreement import agreement_table
from gradual_transfer.report import write_table_page
from gradual_transfer.screen_figures import figure_estimates
from gradual_transfer.tables import write_tsv

sm = snakemake  # noqa: F821 - injected by Snakemake
startup.start(sm.log[0])
estimates = pd.read_csv(sm.input.estimates, sep="\t")
transferability = pd.read_csv(sm.input.transferability, sep="\t")
agreement = agreement_table(estimates, transferability)
write_tsv(agreement, sm.output.tsv)
write_table_page(sm.output.tsv, sm.output.page)
figure_estimates(estimates, transferability, agreement, sm.params.title, sm.output.png, sm.output.pdf, sm.params.dpi)
