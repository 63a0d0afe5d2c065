"""Speech synthesis with phone timings, through libespeak-ng (shipped by ``espeakng-loader``).

eSpeak NG is driven through its C API with ctypes: initialised synchronously with phoneme
events on, it hands our callback the audio (22,050 Hz, int16) together with an event per
phoneme carrying the eSpeak mnemonic (``S``, ``i:``, ``'A@``) and its position in samples.
Those positions are where the synthesiser switched phoneme, so the labels are true to the
audio by construction.

libespeak-ng keeps global state (one voice, one callback), so one synthesiser per process.
That state also drifts from one synthesis to the next (event positions move by a few samples,
noise sources advance), and ``espeak_Terminate`` does not reset it. For reproducible corpora
every utterance is therefore synthesised in a forked child of a process that initialised the
library but never synthesised: each utterance starts from the same state.
"""

from __future__ import annotations

import ctypes
import os
import pickle
from dataclasses import dataclass

import numpy as np

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAMETERS = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Voice:
    """An eSpeak voice: language + variant (``en-us+f3``) and prosody parameters."""

    variant: str = "m1"
    pitch: int = 50  # 0..99, base pitch
    range: int = 50  # 0..99, pitch range
    rate: int = 175  # words per minute, 80..450
    volume: int = 100  # 0..200
    language: str = "en-us"


@dataclass
class Utterance:
    audio: np.ndarray  # int16 at `sample_rate`
    sample_rate: int
    phonemes: list[tuple[str, int]]  # (eSpeak mnemonic, start sample), in order
    words: list[int]  # start sample of each word


class Synthesizer:
    _instance: "Synthesizer | None" = None

    def __new__(cls):
        # libespeak-ng has process-global state: share one initialised instance.
        if cls._instance is None:
            cls._instance = super().__new__(cls)
            cls._instance._setup()
        return cls._instance

    def _setup(self) -> None:
        import espeakng_loader

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.sample_rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(),
            _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT,
        )
        if self.sample_rate <= 0:
            raise RuntimeError("libespeak-ng failed to initialise (espeakng-loader's data path?)")
        self._chunks: list[np.ndarray] = []
        self._phonemes: list[tuple[str, int]] = []
        self._words: list[int] = []
        self._callback = _Callback(self._on_audio)  # keep a reference: C holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                self._phonemes.append((event.id.string.decode("utf-8"), event.sample))
            elif event.type == _EVENT_WORD:
                self._words.append(event.sample)
            i += 1
        return 0  # continue synthesis

    def synthesize(self, text: str, voice: Voice) -> Utterance:
        """Synthesise `text` with `voice` in a forked child (see the module docstring)."""
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: synthesise, send the pickled result, exit without cleanup
            status = 1
            try:
                os.close(read_end)
                try:
                    payload = pickle.dumps(self._synthesize_here(text, voice))
                except Exception as error:  # noqa: BLE001 - re-raised in the parent
                    payload = pickle.dumps(error)
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(payload)
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or not payload:
            raise RuntimeError(f"eSpeak synthesis process failed (status {status}) on {text!r}")
        result = pickle.loads(payload)
        if isinstance(result, Exception):
            raise result
        return result

    def _synthesize_here(self, text: str, voice: Voice) -> Utterance:
        name = f"{voice.language}+{voice.variant}".encode()
        if self._lib.espeak_SetVoiceByName(name) != 0:
            raise ValueError(f"eSpeak has no voice {name.decode()!r}")
        for key, code in _PARAMETERS.items():
            if key != "wordgap":
                self._lib.espeak_SetParameter(code, int(getattr(voice, key)), 0)
        self._chunks, self._phonemes, self._words = [], [], []
        data = text.encode("utf-8")
        status = self._lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status} on {text!r}")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return Utterance(audio.astype(np.int16), self.sample_rate, list(self._phonemes), list(self._words))
