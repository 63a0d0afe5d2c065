"""Errors about input data: each message names the file and what is wrong with it."""


class DataError(ValueError):
    """Input data is missing or malformed; the message names the file and the fix."""
