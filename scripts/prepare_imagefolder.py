"""Snakemake adapter: an ImageFolder tree → train/validation/test Arrow files (rule prepare_imagefolder)."""

from pathlib import Path

from gradual_transfer import startup
from gradual_transfer.data.imagefolder import prepare

startup.start(snakemake.log[0])  # noqa: F821 - injected by Snakemake
prepare(
    snakemake.input.root,  # noqa: F821
    Path(snakemake.output.train).parent,  # noqa: F821
    snakemake.config["datasets"][snakemake.wildcards.dataset],  # noqa: F821
    classes=snakemake.params.preparation["classes"],  # noqa: F821
    dataset=snakemake.wildcards.dataset,  # noqa: F821
)
