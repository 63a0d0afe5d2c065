"""Snakemake adapter: features and emotion labels of a corpus in IEMOCAP's layout (rule ser_features)."""

from gradual_transfer import startup
from gradual_transfer.data import iemocap
from gradual_transfer.data.frontend import FeatureSettings

startup.start(snakemake.log[0], snakemake.threads)  # noqa: F821 - injected by Snakemake
iemocap.extract(
    snakemake.input.root,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    FeatureSettings.from_config(snakemake.params.features),  # noqa: F821
    silence_threshold_db=snakemake.params.silence_threshold_db,  # noqa: F821
    bad_utterances=snakemake.params.bad_utterances,  # noqa: F821
)
