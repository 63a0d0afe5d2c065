"""Snakemake adapter: a speech model — ASR or SER primary, or a transfer in either direction
(rules asr_primary, ser_primary, asr_to_ser, ser_to_asr)."""

from pathlib import Path

from gradual_transfer import jobs
from gradual_transfer.experiment import input_stamps
from gradual_transfer.speech import run_speech_job

sm = snakemake  # noqa: F821 - injected by Snakemake
jobs.start(sm.log[0], sm.threads, gpu=True)
model_dir = str(Path(sm.output.model).parent.relative_to(Path(sm.config["outdir"]) / "models"))
role = "asr" if "dev" in sm.input.keys() else "ser"
speech = sm.params.speech
posteriors = {}
if role == "asr":
    posteriors = {"validation": (sm.output.dev_ark, sm.output.dev_scp), "test": (sm.output.test_ark, sm.output.test_scp)}
transfer = "source" in sm.input.keys()
parts = model_dir.split("/")
source, target = parts[2].split("-to-") if transfer else (parts[2], parts[2])
run_speech_job(
    role=role,
    features_dir=Path(sm.input.stats).parent.parent,
    fold=int(sm.wildcards.get("fold", 0)),
    arch_name=sm.wildcards.arch,
    arch=sm.params.arch,
    num_classes=speech["classes"],
    recipe_entry=speech["recipe"],
    context=speech["context"],
    out_model=sm.output.model,
    out_metrics=sm.output.metrics,
    fingerprint={"params": dict(sm.params.items()), "inputs": input_stamps(list(sm.input))},
    runtime=sm.config["runtime"],
    posteriors=posteriors,
    validation_speakers=speech.get("validation_speakers"),
    source_model=sm.input.source if transfer else None,
    lc=sm.params.lc if transfer else 0,
    meta={"experiment": "speech", "arch": sm.wildcards.arch, "kind": "transfer" if transfer else "primary",
          "source": source, "target": target, "fold": int(sm.wildcards.get("fold", 0))},
)
