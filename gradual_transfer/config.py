"""Configuration checks that run before Snakemake plans a single job.

Three layers, each with messages that name the config key and the fix:

1. the JSON schema (``workflow/schemas/config.schema.yaml``): types, ranges, enumerations and
   unknown keys; a number that YAML read as a string (``1e-4``) gets its own explanation;
2. cross-references the schema cannot express (a task naming an unknown architecture, an l_c
   beyond the architecture's depth, SER folds outside the fold list);
3. data roots of every dataset an enabled experiment uses, unless the demo generates it
   (:mod:`gradual_transfer.data.layouts`), and the files other settings name (a Kaldi
   alignment). `outdir` is checked with the cross-references: a folder of its own.

A valid config gets the schema's ``default:`` values once (:func:`with_defaults`), so the code
reads keys without defaults of its own. Files merge as Snakemake merges them: ``config.yaml``
first, then each ``--configfile`` (:func:`workflow_config`).

Longer than the library's other modules (~430 lines) because it is the whole config contract in
one place; the per-dataset requirements in :func:`semantic_errors` could move into the schema
(``if``/``then``) and shorten it.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from gradual_transfer.architectures import num_groups
from gradual_transfer.data import layouts

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"

# The image experiment's datasets (the speech experiment reads the others); tasks name their dataset.
IMAGE_DATASETS = ("cifar10", "cifar100", "svhn")


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


def _key(path: Iterable[Any]) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


_NUMBER_STRING = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


_BOUNDS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
_KINDS = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
          "null": "null", "array": "a list", "object": "a mapping"}


def _allowed(schema: dict) -> str:
    """What a schema of one type allows, in words: "an integer from 1 to 5", "null"."""
    if not isinstance(schema, dict):
        return "a value"
    kind = _KINDS.get(schema.get("type"), "a value")
    if schema.get("type") == "string" and schema.get("minLength") == 1:
        return "a non-empty string"
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f"{kind} from {low} to {high}"
    limits = [f"{sign} {schema[bound]}" for bound, sign in zip(_BOUNDS, ("≥", ">", "≤", "<")) if bound in schema]
    return f"{kind} {' and '.join(limits)}" if limits else kind


def _explain(error: "jsonschema.ValidationError") -> str:
    """One schema violation as a sentence that says what to write instead."""
    key = _key(error.absolute_path)
    value = error.instance
    integer = error.validator == "type" and "integer" in (
        error.validator_value if isinstance(error.validator_value, list) else [error.validator_value])
    if error.validator == "type" and isinstance(value, str) and _NUMBER_STRING.match(value.strip()):
        if integer:
            number = float(value)
            if number.is_integer() and abs(number) < 1e300:
                written = str(int(number))
                how = " without quotes" if value.strip().lstrip("+") == written else ""
                return f"{key}: '{value}' is a string, not an integer. Write {written}{how}."
            return f"{key}: '{value}' is a string; write {_allowed(error.schema)}."
        mantissa, _, exponent = value.strip().lower().partition("e")
        if exponent:
            if "." not in mantissa:
                mantissa += ".0"
            return (
                f"{key}: '{value}' is a string, not a number (YAML reads exponent numbers without "
                f"a decimal point as text). Write {mantissa}e{exponent}."
            )
        return f"{key}: '{value}' is a string, not a number. Write {value.strip()} without quotes."
    if integer and isinstance(value, float):
        if value.is_integer() and abs(value) < 1e300:
            return f"{key}: {value!r} is not an integer (it has a decimal point or an exponent). Write {int(value)}."
        return f"{key}: {value!r} is not an integer; write {_allowed(error.schema)}."
    if error.validator in _BOUNDS:
        return f"{key}: {value!r} is out of range; write {_allowed(error.schema)}."
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        hint = f" Allowed keys: {', '.join(allowed)}." if allowed else ""
        return f"{key}: unknown key(s) {', '.join(map(repr, unknown))}.{hint}"
    if error.validator == "required":
        return f"{key}: {error.message}. Add it (see config.yaml for the paper's value)."
    if error.validator == "enum":
        choices = ", ".join(map(repr, error.validator_value))
        return f"{key}: {value!r} is not allowed; choose one of {choices}."
    if error.validator in ("oneOf", "anyOf") and error.context:
        by_alternative: dict[int, list] = {}
        for sub in error.context:
            by_alternative.setdefault(sub.relative_schema_path[0], []).append(sub)
        # Alternatives of one plain type each (null or an integer ≥ 1): say them all, not the
        # first one's complaint ("0 is not of type 'null'").
        tops = [next((e for e in errs if not e.relative_path), None) for _, errs in sorted(by_alternative.items())]
        if len(tops) == len(error.validator_value) and all(
                top is not None and "properties" not in top.schema and "type" in top.schema for top in tops):
            return f"{key}: {value!r} is not allowed; write {' or '.join(_allowed(top.schema) for top in tops)}."
        # Alternatives told apart by a `kind` constant: report the problems of the one the user
        # meant (its constant and type matched), not "is not valid under any of the given schemas".
        meant = [errs for errs in by_alternative.values()
                 if not any(e.validator == "const" or (e.validator == "type" and not e.relative_path) for e in errs)]
        chosen = min(meant or by_alternative.values(), key=len)
        return "; ".join(_explain(e) for e in chosen)
    return f"{key}: {error.message}."


def _validator_class(jsonschema):
    """Draft 2020-12, except that an integer is an int: JSON Schema counts 2.0 and 2.0e13 as
    integers, but Python keeps them floats, which `range`, tensor shapes and seeds refuse."""
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(base, type_checker=checker)


def schema_errors(config: dict, schema_path: Path = SCHEMA_PATH) -> list[str]:
    # imported here, not at the top: reading a config needs no jsonschema, and the benchmarks run
    # on GPU machines that have none
    import jsonschema

    schema = load_yaml(schema_path)
    validator = _validator_class(jsonschema)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    return [_explain(e) for e in errors]


def with_defaults(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """`config` (valid) with the schema's ``default:`` values where a key is absent. Applied once,
    after validation, so that the code reads every key without a default of its own."""

    schema = load_yaml(schema_path)

    def resolved(node: dict) -> dict:
        while "$ref" in node:  # local references only: "#/$defs/<name>"
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        return node

    def fill(node: dict, value):
        node = resolved(node)
        if not isinstance(value, dict):
            return value
        filled = dict(value)
        for key, sub in node.get("properties", {}).items():
            sub = resolved(sub)
            if key in filled:
                filled[key] = fill(sub, filled[key])
            elif "default" in sub:
                filled[key] = copy.deepcopy(sub["default"])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for key in set(filled) - set(node.get("properties", {})):
                filled[key] = fill(extra, filled[key])
        return filled

    return fill(schema, config)


# The metric each dataset's models are scored with (what their metrics files hold); image
# datasets: top-1 accuracy. `tasks.<t>.metric` must name it: the tables' trivial errors and the
# figures' axes are read from the config.
SCORED_WITH = {"timit": "per", "iemocap": "ue"}


def semantic_errors(config: dict) -> list[str]:
    problems = []
    archs, tasks = config["architectures"], config["tasks"]
    for name, arch in archs.items():
        l_h = num_groups(arch)
        bad = [lc for lc in arch["lc"] if lc > l_h]
        if bad:
            problems.append(
                f"architectures.{name}.lc: {bad} exceed L_H = {l_h}, the number of layer groups "
                f"of this architecture. Use values in 0..{l_h}."
            )
        if arch["kind"] == "densenet" and (arch["depth"] - 4) % 3:
            problems.append(
                f"architectures.{name}.depth: {arch['depth']} is not 3n + 4 (three dense blocks of "
                f"n layers plus conv0, two transitions and the classifier). Use e.g. 40 or 10."
            )
    for name, task in tasks.items():
        if task["dataset"] not in config["datasets"]:
            problems.append(
                f"tasks.{name}.dataset: {task['dataset']!r} has no entry under datasets. "
                f"Add datasets.{task['dataset']}.root."
            )
        scored_with = SCORED_WITH.get(task["dataset"], "accuracy")
        if task["metric"] != scored_with:  # the trivial errors and figure axes are read from it
            problems.append(
                f"tasks.{name}.metric: {task['metric']!r}, but {task['dataset']} is scored with "
                f"{scored_with!r}; write metric: {scored_with}."
            )
        if task["dataset"] == "iemocap":
            for key in ("validation_speakers", "folds", "silence_threshold_db"):
                if key not in task:
                    problems.append(f"tasks.{name}.{key}: required for an IEMOCAP task.")
            folds = task.get("folds", [])
            if folds and max(folds) > 10 - len(task.get("validation_speakers", [])):
                problems.append(
                    f"tasks.{name}.folds: IEMOCAP has 10 speakers; with "
                    f"{len(task['validation_speakers'])} for validation there are "
                    f"{10 - len(task['validation_speakers'])} folds, not {max(folds)}."
                )
        if task["dataset"] == "timit":
            if "decode" not in task:
                problems.append(f"tasks.{name}.decode: required for a TIMIT task (acoustic_scales, insertion_penalties).")
            if "frame_targets" not in task:
                problems.append(f"tasks.{name}.frame_targets: required for a TIMIT task (thirds, alignment or "
                                f"realigned).")
            elif task["frame_targets"] == "alignment" and not task.get("alignment"):
                problems.append(
                    f"tasks.{name}.alignment: frame_targets is 'alignment', so give the path of a "
                    f"Kaldi alignment archive (ali.ark or ali.scp, pdf ids)."
                )
            aligner = task.get("realign_with")
            if task.get("frame_targets") == "realigned" and aligner is not None and (
                    aligner not in config["architectures"]
                    or config["architectures"][aligner].get("kind") != "convnet"):
                speech = sorted(a for a, e in config["architectures"].items() if e.get("kind") == "convnet")
                problems.append(f"tasks.{name}.realign_with: {aligner!r} is not a speech architecture of "
                                f"`architectures` ({', '.join(speech)}).")
    for exp_name, exp in config["experiments"].items():
        for t in exp["tasks"]:
            if t not in tasks:
                problems.append(f"experiments.{exp_name}.tasks: unknown task {t!r}; defined: {sorted(tasks)}.")
            elif (tasks[t]["dataset"] in IMAGE_DATASETS) != (exp_name == "images"):
                problems.append(
                    f"experiments.{exp_name}.tasks: task {t!r} reads {tasks[t]['dataset']}, which "
                    f"belongs to the other experiment."
                )
        for a in exp["architectures"]:
            if a not in archs:
                problems.append(
                    f"experiments.{exp_name}.architectures: unknown architecture {a!r}; defined: {sorted(archs)}."
                )
    speech = config["experiments"].get("speech")
    if speech and not problems:
        by_dataset = {tasks[t]["dataset"]: t for t in speech["tasks"]}
        if set(by_dataset) != {"timit", "iemocap"}:
            problems.append("experiments.speech.tasks: name one TIMIT task and one IEMOCAP task.")
        else:
            ser_folds = set(tasks[by_dataset["iemocap"]]["folds"])
            extra = sorted(set(speech["ser_source_folds"]) - ser_folds)
            if extra:
                problems.append(
                    f"experiments.speech.ser_source_folds: {extra} are not in "
                    f"tasks.{by_dataset['iemocap']}.folds {sorted(ser_folds)}."
                )
    for arch in config["runtime"].get("cuda_by_architecture", {}):
        if arch not in archs:
            problems.append(f"runtime.cuda_by_architecture.{arch}: unknown architecture; defined: {sorted(archs)}.")
    demo = config.get("demo", {})
    for dataset in demo:
        if dataset != "seed" and dataset not in config["datasets"]:
            problems.append(f"demo.{dataset}: generates a dataset that has no datasets.{dataset} entry.")
    return problems


def used_datasets(config: dict) -> list[str]:
    """Datasets read by the enabled experiments, in config order."""
    used = []
    for exp in config["experiments"].values():
        if exp["enabled"]:
            used += [config["tasks"][t]["dataset"] for t in exp["tasks"]]
    return [d for d in config["datasets"] if d in used]


def demo_datasets(config: dict) -> list[str]:
    """Datasets whose root the demo rules generate."""
    return [d for d in config.get("demo", {}) if d in config["datasets"]]


# Where no outdir may be: the system's own trees (and anything inside them), and folders that
# hold others' files (themselves: a folder of one's own inside them is fine). An outdir there
# scatters corpora/, logs/, models/ and a lock file among what is already there.
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin", "/sys",
                "/usr")
SHARED_FOLDERS = ("/", "/home", "/media", "/mnt", "/opt", "/root", "/run", "/srv", "/tmp", "/var")


def outdir_errors(config: dict, base: Path = Path(".")) -> list[str]:
    """`outdir` must be a folder of its own: not a file, not `/` or a shared folder itself (a
    home directory included), nothing inside a system tree."""
    given = config["outdir"]
    path = (Path(base) / given).resolve()
    if path.exists() and not path.is_dir():
        return [f"outdir: {given} is a file, not a folder. Set outdir to a folder (it is made when missing)."]
    try:
        home = Path.home().resolve()
    except (KeyError, RuntimeError):  # no home directory known
        home = None
    if str(path) in SHARED_FOLDERS or path == home:
        shown = given if str(path) == str(given) else f"{given} ({path})"
        return [f"outdir: {shown} is a folder that holds other files than this workflow's. Set outdir to a folder "
                f"of its own (e.g. results)."]
    tree = next((t for t in SYSTEM_TREES if path == Path(t) or Path(t) in path.parents), None)
    if tree is not None:
        return [f"outdir: {given} is inside {tree}, which holds the system's own files. Set outdir to a folder of "
                f"your own, e.g. results."]
    return []


def alignment_errors(config: dict, base: Path = Path(".")) -> list[str]:
    """The Kaldi alignment a TIMIT task trains on (``frame_targets: alignment``): its files
    exist and are of the right kind (an archive, or a script file and the archives it names)."""
    from gradual_transfer.data.errors import DataError
    from gradual_transfer.data.timit import alignment_files

    speech = config["experiments"].get("speech", {})
    if not speech.get("enabled"):
        return []
    problems = []
    for name in speech["tasks"]:
        task = config["tasks"][name]
        if task["dataset"] == "timit" and task.get("frame_targets") == "alignment" and task.get("alignment"):
            try:
                alignment_files(task["alignment"], base)
            except DataError as error:
                problems.append(f"tasks.{name}.alignment: {error}")
    return problems


def data_root_errors(config: dict, base: Path = Path(".")) -> list[str]:
    generated = set(demo_datasets(config))
    problems = []
    for dataset in used_datasets(config):
        if dataset in generated:
            continue
        entry = config["datasets"][dataset]
        if entry.get("download"):
            continue  # torchvision fetches it into the root during preparation
        problem = layouts.check_root(dataset, base / entry["root"], entry)
        if problem:
            problems.append(f"datasets.{dataset}.root: {problem}")
        elif dataset == "iemocap":
            problems += ser_fold_errors(config, base / entry["root"])
    return problems


def ser_fold_errors(config: dict, root: Path) -> list[str]:
    """Folds of the SER task whose test or validation speakers have no usable utterance in the
    corpus at `root` (its labels are read: a second). A corpus whose labels cannot be read is
    left to the extraction job, which says what is wrong with it."""
    from gradual_transfer.data import iemocap
    from gradual_transfer.data.errors import DataError

    name, task = next((n, t) for n, t in config["tasks"].items() if t["dataset"] == "iemocap")
    try:
        utterances, _ = iemocap.list_utterances(root)
    except DataError:
        return []
    counts: dict[str, int] = {}
    for utt in utterances:
        counts[utt.speaker] = counts.get(utt.speaker, 0) + 1
    try:
        return iemocap.fold_problems(counts, task["validation_speakers"], task["folds"], name, str(root))
    except DataError as error:  # validation speakers that are not IEMOCAP speakers
        return [str(error)]


def validate_config(config: dict, base: Path = Path("."), schema_path: Path = SCHEMA_PATH,
                    check_data: bool = True) -> dict:
    """Raise :class:`ConfigError` listing every problem; if none, return the config with the
    schema's defaults filled in (:func:`with_defaults`): what the workflow and the CLI plan from."""
    problems = schema_errors(config, schema_path)
    if not problems:
        problems = semantic_errors(config) + outdir_errors(config, base)
    if not problems and check_data:
        problems = data_root_errors(config, base) + alignment_errors(config, base)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"invalid configuration ({len(problems)} problem(s)):\n{listing}")
    return with_defaults(config, schema_path)
