"""A small corpus in IEMOCAP's layout, acted by eSpeak NG voices.

``<root>/Session<s>/sentences/wav/<dialog>/<utt>.wav`` (16 kHz, 16-bit) and
``<root>/Session<s>/dialog/EmoEvaluation/<dialog>.txt`` in the release's line format: a header
line, then per utterance ``[start - end]<TAB>utt<TAB>emo<TAB>[v, a, d]`` followed by
categorical (``C-…``) and attribute (``A-…``) annotator lines. Two speakers per session, one
female and one male; the letter after ``SesNN`` is the dialog's configuration, the letter of
the last field is the speaker, exactly as in the release.

Emotions are rendered by prosody (pitch level and range, speaking rate, loudness). Besides the
four classes of the study (``exc`` merged into ``hap`` by the reader) some utterances carry
``fru``, ``sur`` or ``xxx`` (no agreement), which the reader must drop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gradual_transfer.demo import formats
from gradual_transfer.demo.espeak import Voice
from gradual_transfer.demo.sentences import sentence
from gradual_transfer.demo.speech import SAMPLE_RATE, speak

# label → (share of utterances, pitch shift, pitch range, rate factor, volume, (valence, arousal, dominance))
EMOTIONS = {
    "neu": (0.24, 0, 45, 1.00, 100, (3.0, 2.5, 2.5)),
    "ang": (0.17, 8, 80, 1.15, 175, (1.5, 4.0, 4.0)),
    "hap": (0.12, 18, 90, 1.08, 130, (4.0, 3.5, 3.0)),
    "exc": (0.14, 22, 95, 1.12, 145, (4.0, 4.0, 3.5)),
    "sad": (0.17, -12, 12, 0.75, 60, (1.5, 1.5, 2.0)),
    "fru": (0.08, 4, 60, 1.05, 140, (2.0, 3.0, 3.0)),
    "sur": (0.03, 25, 99, 1.10, 130, (3.5, 4.0, 3.0)),
    "xxx": (0.05, 5, 60, 1.00, 115, (2.5, 3.0, 3.0)),
}
CATEGORY_NAMES = {"neu": "Neutral", "ang": "Anger", "hap": "Happiness", "exc": "Excited", "sad": "Sadness",
                  "fru": "Frustration", "sur": "Surprise"}
HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
BASE_VOICE = {"F": dict(variant="f2", pitch=62, rate=170), "M": dict(variant="m3", pitch=35, rate=165)}


def speaker_voice(session: int, gender: str) -> Voice:
    rng = np.random.default_rng([session, ord(gender)])
    variants = ["f1", "f2", "f3", "f4", "f5"] if gender == "F" else ["m1", "m2", "m3", "m4", "m6", "m7"]
    base = BASE_VOICE[gender]
    return Voice(variant=str(rng.choice(variants)), pitch=base["pitch"] + int(rng.integers(-8, 9)),
                 range=50, rate=base["rate"] + int(rng.integers(-15, 16)))


def acted(voice: Voice, emotion: str, rng: np.random.Generator) -> Voice:
    _, shift, rng_range, rate, volume, _ = EMOTIONS[emotion]
    jitter = lambda scale: float(rng.normal(0, scale))  # noqa: E731 - tiny local helper
    return Voice(
        variant=voice.variant, language=voice.language,
        pitch=int(np.clip(voice.pitch + shift + jitter(3), 0, 99)),
        range=int(np.clip(rng_range + jitter(6), 0, 99)),
        rate=int(np.clip(voice.rate * rate * (1 + jitter(0.04)), 80, 400)),
        volume=int(np.clip(volume * (1 + jitter(0.08)), 10, 200)),
    )


def _annotations(emotion: str, speaker: str, rng: np.random.Generator) -> tuple[str, list[str]]:
    """The VAD triple of the utterance line and its annotator lines."""
    vad = np.clip(np.array(EMOTIONS[emotion][5]) + rng.choice([-0.5, 0.0, 0.0, 0.5], 3), 1.0, 5.0)
    if emotion == "xxx":  # evaluators disagree: every one names a different category
        votes = list(rng.choice(["Anger", "Frustration", "Neutral", "Sadness", "Excited"], 3, replace=False))
    else:
        votes = [CATEGORY_NAMES[emotion]] * 3
    lines = [f"C-E{k}:\t{v};\t()" for k, v in zip((1, 2, 4), votes)]
    lines.append(f"C-{speaker}1:\t{votes[0]};\t()")
    for who in ("E1", "E2", f"{speaker}1"):
        v, a, d = np.clip(np.round(vad + rng.choice([-1, 0, 0, 1], 3)), 1, 5).astype(int)
        lines.append(f"A-{who}:\tval {v}; act {a}; dom  {d};\t()")
    return "[" + ", ".join(f"{x:.4f}" for x in vad) + "]", lines


def generate(root: Path, settings: dict, seed: int) -> int:
    """Write the corpus under `root` (which must not exist); return the number of utterances."""
    labels = list(EMOTIONS)
    shares = np.array([EMOTIONS[e][0] for e in labels])
    count = 0
    for session in range(1, 6):
        voices = {g: speaker_voice(session, g) for g in "FM"}
        evaluation_dir = root / f"Session{session}" / "dialog" / "EmoEvaluation"
        evaluation_dir.mkdir(parents=True)
        for d in range(settings["dialogs_per_session"]):
            rng = np.random.default_rng([seed, session, d])
            config_letter = "FM"[d % 2]
            number = d // 2 + 1
            dialog = (f"Ses0{session}{config_letter}_impro0{number}" if d % 4 < 2
                      else f"Ses0{session}{config_letter}_script0{number}_1")
            wav_dir = root / f"Session{session}" / "sentences" / "wav" / dialog
            wav_dir.mkdir(parents=True)
            blocks, time, turn_counts = [], float(rng.uniform(1, 5)), {"F": 0, "M": 0}
            for turn in range(settings["turns_per_dialog"]):
                speaker = "FM"[(turn + d) % 2]
                utt = f"{dialog}_{speaker}{turn_counts[speaker]:03d}"
                turn_counts[speaker] += 1
                emotion = str(rng.choice(labels, p=shares / shares.sum()))
                voice = acted(voices[speaker], emotion if emotion != "xxx" else str(rng.choice(labels[:5])), rng)
                rendered = speak(sentence(rng), voice, rng, margin_s=(0.05, 0.25))
                formats.write_wav(wav_dir / f"{utt}.wav", rendered.audio, SAMPLE_RATE)
                start, end = time, time + len(rendered.audio) / SAMPLE_RATE
                vad, annotator_lines = _annotations(emotion, speaker, rng)
                blocks.append(f"[{start:.4f} - {end:.4f}]\t{utt}\t{emotion}\t{vad}\n" + "\n".join(annotator_lines) + "\n")
                time = end + float(rng.uniform(0.3, 1.5))
                count += 1
            (evaluation_dir / f"{dialog}.txt").write_text(HEADER + "\n".join(blocks) + "\n")
    (root / "README.DEMO").write_text(
        "Demo data, not IEMOCAP: sentences acted by eSpeak NG voices whose pitch, range, rate and\n"
        "loudness follow the labelled emotion, laid out like IEMOCAP_full_release so that the real\n"
        "IEMOCAP reader runs on it. Generated by gradual-transfer.\n"
    )
    return count
