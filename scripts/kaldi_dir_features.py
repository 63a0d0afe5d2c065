"""Snakemake adapter: features and frame labels of a Kaldi data directory (rule kaldi_dir_features)."""

from gradual_transfer import startup
from gradual_transfer.data import kaldi
from gradual_transfer.data.frontend import FeatureSettings

startup.start(snakemake.log[0], snakemake.threads)  # noqa: F821 - injected by Snakemake
dataset = snakemake.wildcards.dataset  # noqa: F821
kaldi.extract(
    snakemake.input.root,  # noqa: F821
    snakemake.output.features,  # noqa: F821
    FeatureSettings.from_config(snakemake.params.features),  # noqa: F821
    silence_threshold_db=snakemake.params.silence_threshold_db,  # noqa: F821
    # allow_commands is read from the config, not params: it changes no result (common.smk)
    entry={**snakemake.params.dataset, "allow_commands": snakemake.config["datasets"][dataset]["allow_commands"]},  # noqa: F821
    dataset=dataset,
    bad_utterances=snakemake.params.dataset["bad_utterances"],  # noqa: F821
    classes_out=snakemake.output.classes,  # noqa: F821
)
