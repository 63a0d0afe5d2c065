"""Writers for the corpora's original on-disk formats, byte-for-byte reproducible.

Nothing here embeds a time stamp or host name, so two generations with one seed are identical.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import scipy.io
import soundfile

SPHERE_HEADER_BYTES = 1024


def write_sphere(path: Path, samples: np.ndarray, sample_rate: int, utterance_id: str) -> None:
    """16-bit little-endian PCM with a 1024-byte NIST_1A header, as on the TIMIT CD-ROM."""
    samples = np.asarray(samples, dtype="<i2")
    fields = [
        ("database_id", "-s5", "TIMIT"),
        ("database_version", "-s3", "1.0"),
        ("utterance_id", f"-s{len(utterance_id)}", utterance_id),
        ("channel_count", "-i", "1"),
        ("sample_count", "-i", str(len(samples))),
        ("sample_rate", "-i", str(sample_rate)),
        ("sample_min", "-i", str(int(samples.min()) if len(samples) else 0)),
        ("sample_max", "-i", str(int(samples.max()) if len(samples) else 0)),
        ("sample_n_bytes", "-i", "2"),
        ("sample_byte_format", "-s2", "01"),
        ("sample_sig_bits", "-i", "16"),
    ]
    text = "NIST_1A\n   1024\n" + "".join(f"{k} {t} {v}\n" for k, t, v in fields) + "end_head\n"
    header = text.encode("ascii").ljust(SPHERE_HEADER_BYTES, b" ")
    assert len(header) == SPHERE_HEADER_BYTES
    path.write_bytes(header + samples.tobytes())


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """RIFF/WAVE 16-bit PCM mono (IEMOCAP's sentence files)."""
    soundfile.write(str(path), np.asarray(samples, dtype=np.int16), sample_rate, subtype="PCM_16", format="WAV")


def write_pickle(path: Path, obj: dict) -> None:
    """CIFAR's python-version batch files: a pickled dict (fixed protocol, so reproducible)."""
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_mat(path: Path, arrays: dict) -> None:
    """MATLAB v5 file as SVHN ships; scipy stamps the creation time into the 116-byte text
    header, which we overwrite so the file is reproducible."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, arrays, format="5", do_compression=False)
    data = bytearray(buffer.getvalue())
    text = b"MATLAB 5.0 MAT-file, written by gradual-transfer (demo data)"
    data[:116] = text.ljust(116, b" ")
    path.write_bytes(bytes(data))
