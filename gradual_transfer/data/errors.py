"""Errors about input data: each message names the file and what is wrong with it."""

from gradual_transfer.names import ALLOWED, problem, shown


class DataError(ValueError):
    """Input data is missing or malformed; the message names the file and the fix."""


def check_id(value: str, what: str, where: object, fix: str = "Rename it.") -> str:
    """`value` if it is a name (:mod:`gradual_transfer.names`); otherwise a :class:`DataError`
    naming `where` (the folder or file the id comes from), what is wrong with it and the fix."""
    why = problem(value, "an id")
    if why is None:
        return value
    raise DataError(f"{where}: {what} {shown(value)} {why}: ids may hold only {ALLOWED}, so that Kaldi data "
                    f"directories and shells read them as one word. {fix}")
