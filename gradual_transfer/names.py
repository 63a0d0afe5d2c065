"""Names, in one pattern: what a user calls a dataset, task, architecture or experiment (the keys
under ``datasets``, ``tasks``, ``architectures`` and ``experiments``), and the ids a corpus holds
(utterances, speakers and recordings, a Kaldi directory's class labels).

A name is 1 to 64 ASCII letters, digits, ``_``, ``-`` and ``.``, the first not ``.`` or ``-``
(:data:`PATTERN`). So a name is

- one path component that stays in its folder: no ``/``, and never ``.`` or ``..``; the workflow
  builds every output path from names under ``outdir`` (``models/<arch>/primary/<task>/``,
  ``figures/study_<experiment>.png``), so no name can write outside it;
- one word for a shell and for Kaldi's tables (``<id> <value>`` lines, ``wav.scp`` values run
  through ``sh``): no whitespace, quote or metacharacter such as ``$ ; & | ( ) < > ` \\ *``;
- a file name that no tool reads as an option (``-x``) and no listing hides (``.x``);
- short enough that a file name built from two (``<source>-to-<target>``) stays well within the
  255 bytes file systems allow.

A name in the config (not an id) must also not end in one part repeated 20 times or more
(``...xxxxxxxxxxxxxxxxxxxx``): Snakemake takes such a wildcard value for an endless recursion and
stops (``PeriodicWildcardError``), so the check says it first.

The config check refuses any other name, naming its key (:func:`problem`); the readers that build
ids from a corpus refuse any other id, naming the folder or file
(:func:`gradual_transfer.data.errors.check_id`), so nothing downstream ever sees one: rename it.
"""

from __future__ import annotations

import re

MAX_LENGTH = 64
PATTERN = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9._-]{{0,{MAX_LENGTH - 1}}}")
_CHARACTER = re.compile(r"[A-Za-z0-9._-]")
_PERIODIC = re.compile(r"(.+?)\1{19,}$")  # what Snakemake's PeriodicityDetector finds in a wildcard value

ALLOWED = (f"ASCII letters, digits, '_', '-' and '.' (1 to {MAX_LENGTH} of them, the first not '.' or '-')")


def is_name(value: object) -> bool:
    return isinstance(value, str) and bool(PATTERN.fullmatch(value))


def shown(value: object) -> str:
    """`value` as a message quotes it: its repr, cut short when long."""
    text = repr(value)
    return text if len(text) <= 50 else f"{text[:40]}…"


def problem(value: object, kind: str = "a name") -> str | None:
    """Why `value` is not a name (`kind`: "a name", "an id"), as the end of a sentence that
    starts with the value; None when it is one."""
    if not isinstance(value, str):
        return "is a number, not text" if isinstance(value, (int, float)) else "is not text"
    if not value:
        return "is empty"
    bad = sorted({c for c in value if not _CHARACTER.fullmatch(c)})
    if bad:
        return f"holds characters {kind} cannot hold ({', '.join(map(repr, bad))})"
    if value[0] in ".-":
        return f"starts with {value[0]!r}"
    if len(value) > MAX_LENGTH:
        return f"is {len(value)} characters long"
    repeated = _PERIODIC.search(value) if kind == "a name" else None
    if repeated:
        return (f"ends in {repeated.group(1)!r} repeated {len(repeated.group(0)) // len(repeated.group(1))} times, "
                f"which Snakemake takes for an endless recursion")
    return None
