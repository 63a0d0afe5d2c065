"""Snakemake adapter: export features as Kaldi feats.ark/scp (rule kaldi_features)."""

from pathlib import Path

from gradual_transfer import jobs
from gradual_transfer.features import export_kaldi

jobs.start(snakemake.log[0])  # noqa: F821 - injected by Snakemake
export_kaldi(snakemake.input[0], Path(snakemake.output.scp).parent)  # noqa: F821
