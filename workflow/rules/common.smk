# Shared helpers: configuration checks, output paths and parameter helpers.
import sys
from pathlib import Path

# The library sits beside the Snakefile. Scripts find it through the link
# scripts/gradual_transfer (Snakemake puts a script's folder on its path, in any environment).
sys.path.insert(0, workflow.basedir)

from gradual_transfer.config import (
    ConfigError,
    canonical,
    demo_datasets,
    validate_config,
)

# Data roots are checked before any job is planned, so a wrong path fails in seconds.
# `snakemake --lint` reads the rules, never the data, so it runs on a clone without data.
try:
    validate_config(config, check_data="--lint" not in sys.argv)
except ConfigError as error:
    raise WorkflowError(str(error)) from None

OUT = config["outdir"]
DEMO_DATASETS = demo_datasets(config)


wildcard_constraints:
    dataset="|".join(["cifar10", "cifar100", "svhn", "timit", "iemocap"]),


def dataset_root(dataset):
    """Where a dataset is read from: the generated demo corpus, or the configured root."""
    if dataset in DEMO_DATASETS:
        return f"{OUT}/corpora/{dataset}"
    return config["datasets"][dataset]["root"]


def demo_params(wildcards):
    """Exactly what a demo corpus depends on, as plain sorted builtins."""
    return canonical(config["demo"][wildcards.dataset])


def all_targets():
    return [dataset_root(d) for d in DEMO_DATASETS]
