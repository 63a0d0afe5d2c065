"""The JSON schema (``workflow/schemas/config.schema.yaml``): its violations as sentences that say
what to write instead, what each task needs by the kind of its dataset (the schema's
``<kind>_task`` fragments), and its ``default:`` values, applied once to a valid config."""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any, Iterable

from gradual_transfer import names
from gradual_transfer.config.files import load_yaml
from gradual_transfer.data.kinds import kind_of

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


@functools.lru_cache(maxsize=4)
def load_schema(schema_path: Path = SCHEMA_PATH) -> dict:
    """The schema, read once per process (a validation consults it three times: the schema's
    check, each task's needs by kind, the defaults). Read-only: nothing may change it."""
    return load_yaml(schema_path)


def _key(path: Iterable[Any]) -> str:
    parts = [names.shown(p) if isinstance(p, str) and not names.is_name(p) and p else str(p) for p in path]
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
    if error.validator == "required" and error.schema.get("description"):  # an entry of one's own: what it is
        return f"{key}: {error.message} of {error.schema['description']}."
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

    schema = load_schema(schema_path)
    validator = _validator_class(jsonschema)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    return [_explain(e) for e in errors]


NAMED_SECTIONS = ("datasets", "tasks", "architectures", "experiments")  # their keys are names the paths hold


def name_errors(config: dict) -> list[str]:
    """Every name the config gives (the keys under datasets, tasks, architectures and
    experiments) against the one pattern of :mod:`gradual_transfer.names`: a sentence per name
    that could leave ``outdir`` (``..``, ``/``), split a shell word or a Kaldi line, or exceed
    64 characters."""
    problems = []
    for section in NAMED_SECTIONS:
        entries = config.get(section)
        for name in entries if isinstance(entries, dict) else ():
            why = names.problem(name)
            if why:
                problems.append(f"{section}: the name {names.shown(name)} {why}; names may hold only "
                                f"{names.ALLOWED}. Rename it.")
    return problems


def task_kind_errors(config: dict, schema_path: Path = SCHEMA_PATH) -> list[str]:
    """Each task against what the kind of its dataset requires (``$defs/<kind>_task`` of the
    schema, :attr:`~gradual_transfer.data.kinds.DatasetKind.task_schema`): a TIMIT task needs its
    frame targets and decoding grids, an IEMOCAP task its folds."""
    import jsonschema

    schema = load_schema(schema_path)
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

    schema = load_schema(schema_path)

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
        if "if" in node:  # the branch the (valid) value takes: `if` decided by its const properties
            wanted = node["if"].get("properties", {})
            matches = all(key in value and value[key] == sub.get("const") for key, sub in wanted.items())
            return fill(node["then"] if matches else node["else"], value)
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
