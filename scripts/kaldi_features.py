"""Snakemake adapter: a Kaldi data directory of extracted features (rule kaldi_data)."""

from pathlib import Path

from gradual_transfer import startup
from gradual_transfer.data.frontend import export_kaldi

sm = snakemake  # noqa: F821 - injected by Snakemake
startup.start(sm.log[0])
dataset = sm.wildcards.corpus
export_kaldi(sm.input.features, Path(sm.output.scp).parent, dataset, sm.params.root,
             kind=sm.config["datasets"][dataset]["kind"])
