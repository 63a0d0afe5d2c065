"""Snakemake adapter: every training job's history → the training-curves figure (rule figure_curves)."""

from gradual_transfer import startup
from gradual_transfer.figures import figure_curves
from gradual_transfer.tables import curves_table

startup.start(snakemake.log[0])  # noqa: F821 - injected by Snakemake
figure_curves(
    curves_table(list(snakemake.input)),  # noqa: F821
    snakemake.params.task_metrics,  # noqa: F821
    snakemake.params.title,  # noqa: F821
    snakemake.output.png,  # noqa: F821
    snakemake.output.pdf,  # noqa: F821
    dpi=snakemake.params.dpi,  # noqa: F821
)
