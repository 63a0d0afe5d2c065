"""A refactor touches no result: every training job's params on the paper and demo configs are
those recorded before it (tests/data/grid_params.json, one SHA-256 of each job's params ``repr``,
which is what Snakemake compares). A change that means to alter params re-records the file
(``python tests/test_frozen_params.py``) in the same commit, and says why."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from conftest import REPO, load_yaml, unshared

FROZEN = Path(__file__).with_name("data") / "grid_params.json"


def configs() -> dict:
    from gradual_transfer.config import merge

    paper = unshared(load_yaml(REPO / "config.yaml"))
    return {"paper": paper, "demo": merge(paper, load_yaml(REPO / "config.demo.yaml"))}


def digest(value) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def grid_params(config: dict) -> dict:
    from gradual_transfer.config import validate_config
    from gradual_transfer.grid import aligner_jobs, training_jobs, training_params, transferability_settings

    config = validate_config(config, check_data=False)  # what the workflow plans from
    jobs = training_jobs(config) + aligner_jobs(config)
    return {"jobs": {digest(job.to_dict()): digest(training_params(config, job)) for job in jobs},
            "transferability": digest(transferability_settings(config))}


def test_every_jobs_params_are_as_recorded():
    frozen = json.loads(FROZEN.read_text())
    for name, config in configs().items():
        now = grid_params(config)
        assert now["transferability"] == frozen[name]["transferability"], name
        assert now["jobs"].keys() == frozen[name]["jobs"].keys(), f"{name}: the grid's jobs changed"
        changed = [job for job, params in now["jobs"].items() if frozen[name]["jobs"][job] != params]
        assert not changed, f"{name}: {len(changed)} jobs' params changed"


if __name__ == "__main__":
    FROZEN.write_text(json.dumps({name: grid_params(c) for name, c in configs().items()}, indent=1, sort_keys=True) + "\n")
