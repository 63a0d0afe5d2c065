"""Snakemake adapter: generate one demo corpus (rule demo_corpus)."""

from gradual_transfer import logs
from gradual_transfer.demo import generate_corpus

logs.configure(snakemake.log[0])  # noqa: F821 - injected by Snakemake
generate_corpus(
    snakemake.wildcards.dataset,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    snakemake.params.settings,  # noqa: F821
    snakemake.params.seed,  # noqa: F821
)
