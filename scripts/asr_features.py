"""Snakemake adapter: features and phone-state targets of one split of a corpus in TIMIT's layout (rule asr_features)."""

from gradual_transfer import startup
from gradual_transfer.data import timit
from gradual_transfer.data.frontend import FeatureSettings

startup.start(snakemake.log[0], snakemake.threads)  # noqa: F821 - injected by Snakemake
timit.extract(
    snakemake.input.root,  # noqa: F821
    snakemake.wildcards.split,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    FeatureSettings.from_config(snakemake.params.features),  # noqa: F821
    frame_targets=snakemake.params.frame_targets,  # noqa: F821
    alignment=snakemake.input.alignment[0] if snakemake.input.alignment else None,  # noqa: F821
    bad_utterances=snakemake.params.bad_utterances,  # noqa: F821
)
