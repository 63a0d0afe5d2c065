"""eSpeak NG (en-us) phoneme mnemonics → TIMIT's 61 phone labels, with segment timings.

One eSpeak phoneme can become several TIMIT labels: a stop is a closure plus a release
(``t`` → ``tcl t``), an r-coloured vowel is a vowel plus ``r`` (``A@`` → ``aa r``). Its segment
is then split in the given proportions. Stress marks (``'`` and ``,``) are dropped; ``;``
(palatalisation) extends the previous phone.
"""

from __future__ import annotations

STOP_CLOSURE = 0.6  # share of a stop's segment that is closure silence

_STOPS = {"b": "bcl", "d": "dcl", "g": "gcl", "p": "pcl", "t": "tcl", "k": "kcl"}

# mnemonic → [(TIMIT label, share of the segment)]
ESPEAK_TO_TIMIT: dict[str, list[tuple[str, float]]] = {
    **{s: [(c, STOP_CLOSURE), (s, 1 - STOP_CLOSURE)] for s, c in _STOPS.items()},
    "tS": [("tcl", 0.4), ("ch", 0.6)],
    "dZ": [("dcl", 0.4), ("jh", 0.6)],
    "t#": [("dx", 1.0)], "d#": [("dx", 1.0)],
    "f": [("f", 1.0)], "v": [("v", 1.0)], "T": [("th", 1.0)], "D": [("dh", 1.0)],
    "s": [("s", 1.0)], "z": [("z", 1.0)], "S": [("sh", 1.0)], "Z": [("zh", 1.0)],
    "h": [("hh", 1.0)], "x": [("hh", 1.0)],
    "m": [("m", 1.0)], "n": [("n", 1.0)], "N": [("ng", 1.0)],
    "m-": [("em", 1.0)], "n-": [("en", 1.0)], "l-": [("el", 1.0)], "@L": [("el", 1.0)],
    "l": [("l", 1.0)], "r": [("r", 1.0)], "r-": [("r", 1.0)], "w": [("w", 1.0)], "j": [("y", 1.0)],
    "?": [("q", 1.0)],
    # vowels
    "a": [("ae", 1.0)], "aa": [("ae", 1.0)], "A:": [("aa", 1.0)], "0": [("aa", 1.0)],
    "V": [("ah", 1.0)], "@": [("ax", 1.0)], "@2": [("ax", 1.0)], "@5": [("ax", 1.0)], "a#": [("ax", 1.0)],
    "3": [("axr", 1.0)], "3:": [("er", 1.0)],
    "E": [("eh", 1.0)], "I": [("ih", 1.0)], "I#": [("ix", 1.0)], "I2": [("ix", 1.0)],
    "i": [("iy", 1.0)], "i:": [("iy", 1.0)],
    "O:": [("ao", 1.0)], "O2": [("ao", 1.0)], "O": [("ao", 1.0)],
    "U": [("uh", 1.0)], "u:": [("uw", 1.0)],
    "aI": [("ay", 1.0)], "aU": [("aw", 1.0)], "OI": [("oy", 1.0)], "eI": [("ey", 1.0)], "oU": [("ow", 1.0)],
    # r-coloured and centring diphthongs
    "A@": [("aa", 0.6), ("r", 0.4)], "O@": [("ao", 0.6), ("r", 0.4)], "o@": [("ao", 0.6), ("r", 0.4)],
    "U@": [("uh", 0.6), ("r", 0.4)], "e@": [("eh", 0.6), ("r", 0.4)], "i@3": [("ih", 0.6), ("r", 0.4)],
    "i@": [("iy", 0.6), ("ax", 0.4)], "aI@": [("ay", 0.6), ("ax", 0.4)], "aI3": [("ay", 0.6), ("axr", 0.4)],
    "aU@": [("aw", 0.6), ("axr", 0.4)],
}

PAUSES = {"_", "_:", "_!", "_;"}


def strip_stress(mnemonic: str) -> str:
    return mnemonic.lstrip("',")


def to_timit_segments(phonemes: list[tuple[str, int]], end: int) -> list[tuple[int, int, str]]:
    """(mnemonic, start) events of one utterance → TIMIT ``(start, end, label)`` segments.

    Pauses are returned as ``pau``; the caller turns the leading and trailing silence into
    ``h#``. Unknown mnemonics raise, so a gap in the table is found, never papered over.
    """
    segments: list[tuple[int, int, str]] = []
    bounds = [start for _, start in phonemes[1:]] + [end]
    for (mnemonic, start), stop in zip(phonemes, bounds):
        name = strip_stress(mnemonic)
        if name == ";":
            if segments:  # palatalisation mark: belongs to the phone before it
                s, _, label = segments.pop()
                segments.append((s, stop, label))
            continue
        if name in PAUSES:
            parts = [("pau", 1.0)]
        elif name in ESPEAK_TO_TIMIT:
            parts = ESPEAK_TO_TIMIT[name]
        else:
            raise KeyError(f"no TIMIT label for eSpeak phoneme {mnemonic!r}; add it to ESPEAK_TO_TIMIT")
        position = float(start)
        for label, share in parts:
            a, position = int(round(position)), position + share * (stop - start)
            segments.append((a, int(round(position)), label))
    return [(a, b, label) for a, b, label in segments if b > a]
