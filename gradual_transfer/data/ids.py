"""Utterance and speaker ids that every consumer can hold: Kaldi data directories (whose files
are ``<id> <value>`` lines, split at the first space, and whose ``wav.scp`` values Kaldi may run
through ``sh``), Arrow columns and file names.

An id may hold only ASCII letters, digits, ``.``, ``_`` and ``-`` (no whitespace, no quote, no
shell metacharacter such as ``$ ; & | ( ) < > ` \\ *``). The readers that build ids from a corpus
(TIMIT: the speaker folder and the file name; IEMOCAP: the utterance name of its label line)
refuse any other, naming the folder or file, so nothing downstream ever sees one: rename it.
"""

from __future__ import annotations

import re

from gradual_transfer.data.errors import DataError

ALLOWED = "ASCII letters, digits, '.', '_' and '-'"
_SAFE = re.compile(r"[A-Za-z0-9._-]+")


def is_safe_id(value: str) -> bool:
    return bool(_SAFE.fullmatch(value))


def check_id(value: str, what: str, where: object, fix: str = "Rename it.") -> str:
    """`value` if it is a safe id; otherwise a :class:`DataError` naming `where` (the folder or
    file the id comes from), the characters that are not allowed and the fix."""
    if is_safe_id(value):
        return value
    bad = sorted({c for c in value if not _SAFE.fullmatch(c)})
    problem = f"holds characters an id cannot hold ({', '.join(map(repr, bad))})" if bad else "is empty"
    raise DataError(f"{where}: {what} {value!r} {problem}: "
                    f"ids may hold only {ALLOWED}, so that Kaldi data directories and shells read them as one word. "
                    f"{fix}")
