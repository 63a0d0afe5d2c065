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
from gradual_transfer.data.kinds import kind_of
from gradual_transfer.grid import SPEECH_EXPERIMENT

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


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


def task_kind_errors(config: dict, schema_path: Path = SCHEMA_PATH) -> list[str]:
    """Each task against what the kind of its dataset requires (``$defs/<kind>_task`` of the
    schema, :attr:`~gradual_transfer.data.kinds.DatasetKind.task_schema`): a TIMIT task needs its
    frame targets and decoding grids, an IEMOCAP task its folds."""
    import jsonschema

    schema = load_yaml(schema_path)
    problems = []
    for name, task in config["tasks"].items():
        if task["dataset"] not in config["datasets"]:
            continue  # said by semantic_errors
        kind = kind_of(config, task["dataset"])
        if kind.task_schema is None:
            continue
        fragment = {"$defs": schema["$defs"], "$ref": f"#/$defs/{kind.task_schema}"}
        for error in _validator_class(jsonschema)(fragment).iter_errors(task):
            if error.validator == "required":
                missing = error.message.split("'")[1]
                problems.append(f"tasks.{name}.{missing}: required for a task reading {kind.name} "
                                f"({schema['$defs'][kind.task_schema]['description']}); see config.yaml.")
            else:
                error.path.extendleft(reversed(["tasks", name]))
                problems.append(_explain(error))
    return problems


def with_defaults(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """`config` (valid) with the schema's ``default:`` values where a key is absent. Applied once,
    after validation, so that the code reads every key without a default of its own."""

    schema = load_yaml(schema_path)

    def resolved(node: dict) -> dict:
        while "$ref" in node:  # local references only: "#/$defs/<name>"
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        return node

    def properties(node: dict) -> dict:
        """A node's properties, with those of the schemas it combines by ``allOf``."""
        found: dict = {}
        for part in [node, *map(resolved, node.get("allOf", []))]:
            for key, sub in part.get("properties", {}).items():
                found.setdefault(key, []).append(resolved(sub))
        return found

    def fill(node: dict, value):
        node = resolved(node)
        if not isinstance(value, dict):
            return value
        filled = dict(value)
        known = properties(node)
        for key, subs in known.items():
            for sub in subs:
                if key in filled:
                    filled[key] = fill(sub, filled[key])
                elif "default" in sub:
                    filled[key] = copy.deepcopy(sub["default"])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for key in set(filled) - set(known):
                filled[key] = fill(extra, filled[key])
        return filled

    filled = fill(schema, config)
    for name, task in filled.get("tasks", {}).items():  # what the kind of its dataset adds
        fragment = kind_of(filled, task["dataset"]).task_schema
        if fragment is not None:
            filled["tasks"][name] = fill(schema["$defs"][fragment], task)
    return filled


def semantic_errors(config: dict) -> list[str]:
    """Cross-references the schema cannot express. `config` has the schema's defaults."""
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
            continue
        kind = kind_of(config, task["dataset"])
        if task["metric"] != kind.metric:  # the trivial errors and figure axes are read from it
            problems.append(
                f"tasks.{name}.metric: {task['metric']!r}, but {task['dataset']} is scored with "
                f"{kind.metric!r}; write metric: {kind.metric}."
            )
        others = [o for o, t in tasks.items() if t["dataset"] == task["dataset"] and t["classes"] != task["classes"]]
        if others:
            problems.append(f"tasks.{name}.classes: {task['classes']}, but tasks.{others[0]} reads the same dataset "
                            f"({task['dataset']}) with {tasks[others[0]]['classes']}; a dataset has one set of classes.")
        if kind.classes is not None and task["classes"] != kind.classes:
            problems.append(f"tasks.{name}.classes: {task['classes']}, but {task['dataset']} has {kind.classes} "
                            f"classes; write classes: {kind.classes}.")
        if kind.name == "iemocap":
            folds = task["folds"]
            if max(folds) > 10 - len(task["validation_speakers"]):
                problems.append(
                    f"tasks.{name}.folds: IEMOCAP has 10 speakers; with "
                    f"{len(task['validation_speakers'])} for validation there are "
                    f"{10 - len(task['validation_speakers'])} folds, not {max(folds)}."
                )
        if kind.name == "timit":
            if task["frame_targets"] == "alignment" and not task["alignment"]:
                problems.append(
                    f"tasks.{name}.alignment: frame_targets is 'alignment', so give the path of a "
                    f"Kaldi alignment archive (ali.ark or ali.scp, pdf ids)."
                )
            aligner = task["realign_with"]
            if task["frame_targets"] == "realigned" and aligner is not None and (
                    aligner not in config["architectures"]
                    or config["architectures"][aligner].get("kind") != "convnet"):
                speech = sorted(a for a, e in config["architectures"].items() if e.get("kind") == "convnet")
                problems.append(f"tasks.{name}.realign_with: {aligner!r} is not a speech architecture of "
                                f"`architectures` ({', '.join(speech)}).")
    problems += experiment_errors(config)
    for arch in config["runtime"].get("cuda_by_architecture", {}):
        if arch not in archs:
            problems.append(f"runtime.cuda_by_architecture.{arch}: unknown architecture; defined: {sorted(archs)}.")
    demo = config.get("demo", {})
    for dataset in demo:
        if dataset != "seed" and dataset not in config["datasets"]:
            problems.append(f"demo.{dataset}: generates a dataset that has no datasets.{dataset} entry.")
    return problems


def experiment_errors(config: dict) -> list[str]:
    """Each experiment's tasks, architectures and pairs: known, of the experiment's modality
    (speech for ``speech``, image for every other), and one experiment per model."""
    problems = []
    archs, tasks = config["architectures"], config["tasks"]
    for exp_name, exp in config["experiments"].items():
        wanted = "speech" if exp_name == SPEECH_EXPERIMENT else "image"
        for t in exp["tasks"]:
            if t not in tasks:
                problems.append(f"experiments.{exp_name}.tasks: unknown task {t!r}; defined: {sorted(tasks)}.")
            elif tasks[t]["dataset"] in config["datasets"] and kind_of(config, tasks[t]["dataset"]).modality != wanted:
                where = ("the speech experiment" if wanted == "image"
                         else "an image experiment (images, or one of your own)")
                problems.append(
                    f"experiments.{exp_name}.tasks: task {t!r} reads {tasks[t]['dataset']}, which "
                    f"belongs to {where}."
                )
        for a in exp["architectures"]:
            if a not in archs:
                problems.append(
                    f"experiments.{exp_name}.architectures: unknown architecture {a!r}; defined: {sorted(archs)}."
                )
            elif wanted == "image" and archs[a]["kind"] == "convnet":
                problems.append(f"experiments.{exp_name}.architectures: {a!r} is a speech ConvNet (kind convnet); "
                                f"an image experiment trains densenet or torchvision architectures.")
            elif wanted == "speech" and archs[a]["kind"] != "convnet":
                problems.append(f"experiments.{exp_name}.architectures: {a!r} is an image network (kind "
                                f"{archs[a]['kind']}); the speech experiment trains convnet architectures.")
        for pair in exp.get("pairs", []):
            if wanted == "speech":
                problems.append(f"experiments.{exp_name}.pairs: the speech experiment's pairs are fixed "
                                f"(ASR → SER and SER → ASR); remove pairs.")
                break
            strangers = [t for t in pair if t not in exp["tasks"]]
            if strangers:
                problems.append(f"experiments.{exp_name}.pairs: {pair} names {', '.join(map(repr, strangers))}, not "
                                f"among the experiment's tasks {exp['tasks']}.")
            elif pair[0] == pair[1]:
                problems.append(f"experiments.{exp_name}.pairs: {pair} transfers a task to itself; that is the "
                                f"self-transfer control (self_transfer: true).")
    if not problems:
        problems += _shared_model_errors(config) + _image_size_errors(config)
    speech = config["experiments"].get(SPEECH_EXPERIMENT)
    if speech and not problems:
        by_dataset = {kind_of(config, tasks[t]["dataset"]).name: t for t in speech["tasks"]}
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
    return problems


def _shared_model_errors(config: dict) -> list[str]:
    """Two enabled experiments may not train the same primary model (an architecture on a task):
    its folder under models/ would be claimed twice."""
    owner: dict[tuple[str, str], str] = {}
    problems = []
    for exp_name, exp in config["experiments"].items():
        if not exp["enabled"]:
            continue
        for arch in exp["architectures"]:
            for task in exp["tasks"]:
                other = owner.setdefault((arch, task), exp_name)
                if other != exp_name:
                    problems.append(f"experiments.{exp_name}: trains {arch} on {task}, as experiments.{other} does; "
                                    f"give one of them another architecture entry (a copy under another name).")
    return problems


def _image_size_errors(config: dict) -> list[str]:
    """The tasks of an image experiment see images of one size (a transfer feeds the target's
    images to the source's network)."""
    problems = []
    for exp_name, exp in config["experiments"].items():
        if exp_name == SPEECH_EXPERIMENT or not exp["enabled"]:
            continue
        sizes = {t: image_size(config, config["tasks"][t]["dataset"]) for t in exp["tasks"]}
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{t} {s} × {s}" for t, s in sizes.items())
            problems.append(f"experiments.{exp_name}.tasks: images of different sizes ({listed}); set the same "
                            f"datasets.<name>.image_size for all of them.")
    return problems


def torchvision_errors(config: dict) -> list[str]:
    """The proof that each torchvision architecture's groups tile its network, on the images of
    the experiments that train it (:func:`gradual_transfer.models.torchvision_net.verify_groups`:
    built with random weights on the CPU, never downloaded; about a second per network)."""
    shapes = {}
    for exp_name, exp in config["experiments"].items():
        if exp_name == SPEECH_EXPERIMENT or not exp["enabled"]:
            continue
        for arch in exp["architectures"]:
            if config["architectures"][arch]["kind"] == "torchvision":
                size = image_size(config, config["tasks"][exp["tasks"][0]]["dataset"])
                shapes.setdefault(arch, (3, size, size))
    if not shapes:
        return []
    from gradual_transfer.models.torchvision_net import verify_groups

    return [problem for arch, shape in shapes.items()
            for problem in verify_groups(config["architectures"][arch], shape, arch)]


def image_size(config: dict, dataset: str) -> int:
    """The side of a dataset's square images as the networks see them (32 for CIFAR and SVHN)."""
    return config["datasets"][dataset].get("image_size", 32)


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
        if kind_of(config, task["dataset"]).name == "timit" and task["frame_targets"] == "alignment" and task["alignment"]:
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
        kind = kind_of(config, dataset).name
        problem = layouts.check_root(kind, base / entry["root"], entry)
        if problem:
            problems.append(f"datasets.{dataset}.root: {problem}")
        elif kind == "iemocap":
            problems += ser_fold_errors(config, base / entry["root"])
        elif kind == "imagefolder":
            problems += image_folder_errors(config, dataset, base / entry["root"])
    return problems


def image_folder_errors(config: dict, dataset: str, root: Path) -> list[str]:
    """An image folder's classes (folder names only) against its tasks' ``classes``, and its
    validation split: ``val/`` or ``validation``, one of the two."""
    from gradual_transfer.data import imagefolder
    from gradual_transfer.data.errors import DataError

    entry = config["datasets"][dataset]
    try:
        found = len(imagefolder.class_names(root))
    except DataError as error:
        return [f"datasets.{dataset}.root: {error}"]
    problems = [f"tasks.{name}.classes: {task['classes']}, but {root}/train holds {found} class folders "
                f"(datasets.{dataset}); write classes: {found}."
                for name, task in config["tasks"].items() if task["dataset"] == dataset and task["classes"] != found]
    has_val = (root / "val").is_dir()
    if has_val and "validation" in entry:
        problems.append(f"datasets.{dataset}.validation: {root}/val is the validation split; remove validation "
                        f"(or val/ to carve it from train/).")
    if not has_val and "validation" not in entry:
        problems.append(f"datasets.{dataset}.validation: {root} has no val/; give how many training images to "
                        f"hold out for validation (e.g. validation: 500).")
    return problems


def ser_fold_errors(config: dict, root: Path) -> list[str]:
    """Folds of the SER task whose test or validation speakers have no usable utterance in the
    corpus at `root` (its labels are read: a second). A corpus whose labels cannot be read is
    left to the extraction job, which says what is wrong with it."""
    from gradual_transfer.data import iemocap
    from gradual_transfer.data.errors import DataError

    name, task = next((n, t) for n, t in config["tasks"].items() if kind_of(config, t["dataset"]).name == "iemocap")
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
        problems = task_kind_errors(config, schema_path)
    if not problems:
        config = with_defaults(config, schema_path)
        problems = semantic_errors(config) + outdir_errors(config, base)
    if not problems:
        problems = torchvision_errors(config)
    if not problems and check_data:
        problems = data_root_errors(config, base) + alignment_errors(config, base)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"invalid configuration ({len(problems)} problem(s)):\n{listing}")
    return config
