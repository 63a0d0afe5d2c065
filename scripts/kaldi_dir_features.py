"""Snakemake adapter: features and frame labels of a Kaldi data directory (rule kaldi_dir_features)."""

from gradual_transfer import startup
from gradual_transfer.features import FeatureSettings, extract_kaldi

startup.start(snakemake.log[0], snakemake.threads)  # noqa: F821 - injected by Snakemake
extract_kaldi(
    snakemake.input.root,  # noqa: F821
    snakemake.output.features,  # noqa: F821
    FeatureSettings.from_config(snakemake.params.features),  # noqa: F821
    silence_threshold_db=snakemake.params.silence_threshold_db,  # noqa: F821
    entry=snakemake.params.dataset,  # noqa: F821
    dataset=snakemake.wildcards.dataset,  # noqa: F821
    bad_utterances=snakemake.params.dataset["bad_utterances"],  # noqa: F821
    classes_out=snakemake.output.classes,  # noqa: F821
)
