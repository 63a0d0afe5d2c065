"""Configuration checks that run before Snakemake plans a single job: the whole config contract.

Three layers, each with messages that name the config key and the fix:

1. the names of datasets, tasks, architectures and experiments (one pattern,
   :mod:`gradual_transfer.names`, so that no path built from them leaves ``outdir``) and the JSON
   schema (:mod:`~gradual_transfer.config.schema`, ``workflow/schemas/config.schema.yaml``): types,
   ranges, enumerations and unknown keys, and what a task needs by the kind of its dataset; a
   number that YAML read as a string (``1e-4``) gets its own explanation;
2. cross-references the schema cannot express (:mod:`~gradual_transfer.config.references`);
3. the disk (:mod:`~gradual_transfer.config.data`): data roots of every dataset an enabled
   experiment uses, unless the demo generates it, the files other settings name, and `outdir`.

A valid config gets the schema's ``default:`` values once (:func:`with_defaults`), so the code
reads keys without defaults of its own. Files merge as Snakemake merges them: ``config.yaml``
first, then each ``--configfile`` (:func:`workflow_config`, :mod:`~gradual_transfer.config.files`).
"""

from __future__ import annotations

from pathlib import Path

from gradual_transfer.config.data import (data_root_errors, demo_datasets, outdir_errors, task_file_errors,
                                          used_datasets)
from gradual_transfer.config.files import BASE_CONFIG, ConfigError, load_config, load_yaml, merge, workflow_config
from gradual_transfer.config.references import image_size, semantic_errors, torchvision_errors
from gradual_transfer.config.schema import SCHEMA_PATH, name_errors, schema_errors, task_kind_errors, with_defaults

__all__ = ["BASE_CONFIG", "SCHEMA_PATH", "ConfigError", "data_root_errors", "demo_datasets",
           "image_size", "load_config", "load_yaml", "merge", "name_errors", "outdir_errors", "schema_errors",
           "semantic_errors", "task_file_errors", "task_kind_errors", "torchvision_errors", "used_datasets",
           "validate_config", "with_defaults", "workflow_config"]


def validate_config(config: dict, base: Path = Path("."), schema_path: Path = SCHEMA_PATH,
                    check_data: bool = True) -> dict:
    """Raise :class:`ConfigError` listing every problem; if none, return the config with the
    schema's defaults filled in (:func:`with_defaults`): what the workflow and the CLI plan from."""
    problems = name_errors(config) or schema_errors(config, schema_path)
    if not problems:
        problems = task_kind_errors(config, schema_path)
    if not problems:
        config = with_defaults(config, schema_path)
        problems = semantic_errors(config) + outdir_errors(config, base)
    if not problems:
        problems = torchvision_errors(config)
    if not problems and check_data:
        problems = data_root_errors(config, base) + task_file_errors(config, base)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"invalid configuration ({len(problems)} problem(s)):\n{listing}")
    return config
