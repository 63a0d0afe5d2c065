"""Rendering one demo utterance: eSpeak audio at 16 kHz with silence margins and a noise floor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from gradual_transfer.demo.espeak import Synthesizer, Voice

SAMPLE_RATE = 16000


@dataclass
class Rendered:
    audio: np.ndarray  # int16, 16 kHz
    phonemes: list[tuple[str, int]]  # (eSpeak mnemonic, start sample at 16 kHz), margin included
    speech_end: int  # first sample of the trailing silence margin


def speak(text: str, voice: Voice, rng: np.random.Generator, margin_s: tuple[float, float] = (0.08, 0.2),
          noise_dbfs: float = -55.0) -> Rendered:
    """Synthesise `text`, resample 22,050 → 16,000 Hz, pad both ends with silence of random
    length in `margin_s` and add white noise at `noise_dbfs` (a recording never has digital
    silence, and log filter banks of exact zeros are meaningless)."""
    utt = Synthesizer().synthesize(text, voice)
    g = np.gcd(SAMPLE_RATE, utt.sample_rate)
    up, down = SAMPLE_RATE // g, utt.sample_rate // g
    speech = resample_poly(utt.audio.astype(np.float64), up, down)
    lead, trail = (int(rng.uniform(*margin_s) * SAMPLE_RATE) for _ in range(2))
    audio = np.concatenate([np.zeros(lead), speech, np.zeros(trail)])
    audio += rng.normal(0.0, 32768.0 * 10 ** (noise_dbfs / 20), size=audio.shape)
    audio = np.clip(np.round(audio), -32768, 32767).astype(np.int16)
    phonemes = [(m, lead + int(round(s * up / down))) for m, s in utt.phonemes]
    return Rendered(audio, phonemes, lead + len(speech))
