"""Snakemake adapter: a primary image model, or a transfer when the rule gives a source model
(rules image_primary, image_transfer)."""

from pathlib import Path

from gradual_transfer import jobs
from gradual_transfer.experiment import input_stamps, run_image_job

sm = snakemake  # noqa: F821 - injected by Snakemake
jobs.start(sm.log[0], sm.threads, gpu=True)
transfer = "source" in sm.input.keys()
run_image_job(
    data_dir=Path(sm.input.train).parent,
    arch_name=sm.wildcards.arch,
    arch=sm.params.arch,
    num_classes=sm.params.classes,
    recipe_entry=sm.params.recipe,
    out_model=sm.output.model,
    out_metrics=sm.output.metrics,
    fingerprint={"params": dict(sm.params.items()), "inputs": input_stamps(list(sm.input))},
    runtime=sm.config["runtime"],
    source_model=sm.input.source if transfer else None,
    lc=sm.params.lc if transfer else 0,
    meta={
        "experiment": "images",
        "arch": sm.wildcards.arch,
        "kind": "transfer" if transfer else "primary",
        "source": sm.wildcards.source if transfer else sm.wildcards.task,
        "target": sm.wildcards.target if transfer else sm.wildcards.task,
        "fold": 0,
    },
)
