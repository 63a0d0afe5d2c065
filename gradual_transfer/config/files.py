"""Config files: read one (a YAML error is a sentence naming the file and the line), and merge
them as Snakemake does: ``config.yaml`` of the working directory first, then each
``--configfile`` over it."""

from __future__ import annotations

from pathlib import Path

import yaml


class ConfigError(ValueError):
    """The configuration is invalid; the message lists every problem and its fix."""


def load_yaml(path: str | Path) -> dict:
    """A config file as a mapping; a YAML error or another top level is one sentence naming
    the file (and the line)."""
    try:
        with open(path) as f:
            value = yaml.safe_load(f)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML ({problem}). Check the indentation (spaces, no tabs) "
                          f"and the quoting there.") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}).") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: the top level is a {type(value).__name__}; a config file is a mapping of "
                          f"sections (outdir:, datasets:, ...), as in config.yaml.")
    return value


def merge(base: dict, override: dict) -> dict:
    """Deep merge as Snakemake applies ``--configfile`` over ``configfile:`` (mappings merge,
    everything else is replaced)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


BASE_CONFIG = "config.yaml"  # the Snakefile's configfile; every --configfile merges over it


def workflow_config(*configfiles: str | Path) -> dict:
    """The configuration the workflow sees for ``snakemake --configfile A B``: ``config.yaml``
    of the working directory first, then each configfile merged over it in order."""
    return load_config(BASE_CONFIG, *configfiles)


def load_config(*paths: str | Path) -> dict:
    """`paths` merged in this order, as Snakemake merges its ``--configfile`` values."""
    config: dict = {}
    for path in paths:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such config file (run from the repository root, or pass --configfile).")
        config = merge(config, load_yaml(path))
    return config
