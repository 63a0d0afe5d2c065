"""Snakemake adapter: official splits → train/validation/test Arrow files (rule prepare_images)."""

from pathlib import Path

from gradual_transfer import startup
from gradual_transfer.data import cifar_svhn

startup.start(snakemake.log[0])  # noqa: F821 - injected by Snakemake
entry = snakemake.config["datasets"][snakemake.wildcards.dataset]  # noqa: F821
cifar_svhn.prepare(
    snakemake.wildcards.dataset,  # noqa: F821
    snakemake.params.root,  # noqa: F821
    Path(snakemake.output.train).parent,  # noqa: F821
    validation=entry["validation"],
    verify_md5=entry["verify_md5"] and snakemake.wildcards.dataset not in snakemake.config.get("demo", {}),  # noqa: F821
    download=entry["download"],
    use_extra=entry.get("use_extra", False),
    train_limit=entry.get("train_limit"),
)
