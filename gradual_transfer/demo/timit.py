"""A small corpus in TIMIT's layout, spoken by eSpeak NG voices.

``<root>/TRAIN|TEST/DR<n>/<SPEAKER>/<SA1|SI…|SX…>.WAV|.PHN|.TXT``, upper case as on the
original CD-ROM. WAV files are NIST SPHERE (16 kHz, 16-bit); ``.PHN`` files hold
``<begin> <end> <label>`` in samples with TIMIT's 61 labels and ``h#`` at both ends; ``.TXT``
holds ``0 <end> <text>``. Dev and core-test speakers carry names from the real speaker lists
so the real split logic applies; training speakers get fresh TIMIT-style names.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np

from gradual_transfer.demo import formats
from gradual_transfer.demo.espeak import Voice
from gradual_transfer.demo.phones import to_timit_segments
from gradual_transfer.demo.sentences import SA_SENTENCES, sentence
from gradual_transfer.demo.speech import SAMPLE_RATE, speak
from gradual_transfer.resources import listed

VARIANTS = {"f": ["f1", "f2", "f3", "f4", "f5"], "m": ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"]}
SX_READERS = 7  # in TIMIT each SX sentence is read by 7 speakers


def timit_segments(rendered) -> list[tuple[int, int, str]]:
    """Phone segments covering the whole file, ``h#`` over the leading and trailing silence."""
    end = len(rendered.audio)
    segments = to_timit_segments(rendered.phonemes, end)
    while segments and segments[0][2] == "pau":
        segments.pop(0)
    while segments and segments[-1][2] == "pau":
        segments.pop()
    merged = [(0, segments[0][0], "h#")]
    for seg in segments:
        if seg[2] == "pau" and merged[-1][2] == "pau":
            merged[-1] = (merged[-1][0], seg[1], "pau")
        else:
            merged.append(seg)
    merged.append((segments[-1][1], end, "h#"))
    return [s for s in merged if s[1] > s[0]]


def _pick_balanced(names: list[str], count: int) -> list[str]:
    """The first `count` names of a list, alternating female and male where possible."""
    by_sex = {"f": [n for n in names if n[0] == "f"], "m": [n for n in names if n[0] == "m"]}
    picked, turn = [], "f"
    while len(picked) < count and (by_sex["f"] or by_sex["m"]):
        if not by_sex[turn]:
            turn = "m" if turn == "f" else "f"
        picked.append(by_sex[turn].pop(0))
        turn = "m" if turn == "f" else "f"
    return picked


def _fresh_names(rng: np.random.Generator, count: int, taken: set[str]) -> list[str]:
    names = []
    while len(names) < count:
        sex = "fm"[len(names) % 2]
        name = sex + "".join(rng.choice(list(string.ascii_lowercase), 3)) + str(rng.integers(0, 10))
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


def speakers(settings: dict, seed: int) -> list[tuple[str, str]]:
    """(split, speaker) for every demo speaker, speaker names lower case as in the lists."""
    rng = np.random.default_rng([seed, 1])
    dev = _pick_balanced(listed("timit/dev_speakers.txt"), settings["dev_speakers"])
    core = _pick_balanced(listed("timit/core_test_speakers.txt"), settings["core_test_speakers"])
    taken = set(listed("timit/dev_speakers.txt")) | set(listed("timit/core_test_speakers.txt"))
    other = _fresh_names(rng, settings["other_test_speakers"], taken)
    train = _fresh_names(rng, settings["train_speakers"], taken)
    return [("TEST", s) for s in dev + core + other] + [("TRAIN", s) for s in train]


def _voice(speaker: str, rng: np.random.Generator) -> Voice:
    sex = speaker[0]
    pitch = int(rng.integers(55, 80) if sex == "f" else rng.integers(20, 50))
    return Voice(variant=str(rng.choice(VARIANTS[sex])), pitch=pitch, range=int(rng.integers(35, 75)),
                 rate=int(rng.integers(145, 205)))


def generate(root: Path, settings: dict, seed: int) -> int:
    """Write the corpus under `root` (which must not exist); return the number of utterances."""
    spk = speakers(settings, seed)
    rng = np.random.default_rng([seed, 2])
    sx_total = len(spk) * settings["sx_sentences"]
    sx_pool = [sentence(rng) for _ in range(-(-sx_total // SX_READERS))]
    si_counter = 453  # TIMIT numbers SX sentences 3..452 and SI sentences from 453 on
    count = 0
    for index, (split, speaker) in enumerate(spk):
        speaker_rng = np.random.default_rng([seed, 3, index])
        voice = _voice(speaker, speaker_rng)
        texts = dict(SA_SENTENCES)
        for k in range(settings["sx_sentences"]):
            number = (index * settings["sx_sentences"] + k) % len(sx_pool)
            texts[f"SX{3 + number}"] = sx_pool[number]
        for _ in range(settings["si_sentences"]):
            texts[f"SI{si_counter}"] = sentence(speaker_rng)
            si_counter += 1
        directory = root / split / f"DR{index % 8 + 1}" / speaker.upper()
        directory.mkdir(parents=True)
        for utt, text in texts.items():
            rendered = speak(text, voice, speaker_rng)
            formats.write_sphere(directory / f"{utt}.WAV", rendered.audio, SAMPLE_RATE,
                                 f"{speaker}_{utt.lower()}")
            phn = "".join(f"{a} {b} {label}\n" for a, b, label in timit_segments(rendered))
            (directory / f"{utt}.PHN").write_text(phn)
            (directory / f"{utt}.TXT").write_text(f"0 {len(rendered.audio)} {text}\n")
            count += 1
    (root / "README.DEMO").write_text(
        "Demo data, not TIMIT: sentences spoken by eSpeak NG voices, laid out and encoded like\n"
        "LDC93S1 so that the real TIMIT reader runs on it. Phone labels come from the\n"
        "synthesiser's own phoneme events. Generated by gradual-transfer.\n"
    )
    return count
