"""Snakemake adapter: HMM priors, transitions and phone bigram from TIMIT training targets (rule hmm_model)."""

from gradual_transfer import startup
from gradual_transfer.decoding import estimate_hmm

startup.start(snakemake.log[0])  # noqa: F821 - injected by Snakemake
estimate_hmm(snakemake.input[0], snakemake.output[0])  # noqa: F821
