"""Atomic file writes: a reader never sees half a file, an interrupted job leaves no output (nor a
folder it made for one), and a full disk is one sentence naming the file and the free space, not a
C++ stream error."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

FULL_BELOW_BYTES = 1 << 20  # a write that failed with less than this free failed for want of space


class WriteError(OSError):
    """An output could not be written (full disk, quota, permissions); nothing of it is left."""


def _free_bytes(directory: Path) -> int | None:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


def write_failure(path: Path, error: BaseException, free: int | None) -> WriteError | None:
    """The sentence for a failed write of `path`, or None when `error` is not about writing."""
    code = getattr(error, "errno", None)
    if isinstance(error, OSError) and code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return WriteError(code, f"{path}: not written ({os.strerror(code)}).")
    full = code in (errno.ENOSPC, errno.EDQUOT) or (free is not None and free < FULL_BELOW_BYTES
                                                    and isinstance(error, (OSError, RuntimeError)))
    if full:
        where = f"{_size(free)} free on the device of {path.parent}" if free is not None else "device full"
        return WriteError(errno.ENOSPC, f"{path}: not written, the disk is full ({where}). Free space, or set "
                                        f"outdir to a larger disk, and run again.")
    if isinstance(error, OSError) and code == errno.EIO:
        return WriteError(code, f"{path}: not written ({os.strerror(code)}).")
    return None


# Renames held back by the open `all_or_none` blocks of this process (innermost last), and the
# folders their writes made (removed again, when empty, if the block fails).
_held_renames: list[list[tuple[Path, Path]]] = []
_held_folders: list[list[Path]] = []


def make_folder(folder: Path) -> list[Path]:
    """Make `folder` and its missing parents; return those it made, outermost first."""
    missing = []
    current = Path(folder)
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError:
        remove_empty_folders([m for m in reversed(missing) if m.exists()])
        raise
    return list(reversed(missing))


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove `folders` (made by this process, outermost first) that are empty, innermost
    first: a failed write leaves no folder it made behind. One that holds anything stays."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:  # not empty (another writer's files), or gone already
            pass


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds
    (inside :func:`all_or_none`, when that block succeeds). Temporaries left by an earlier
    writer of `path` that was killed are removed first; folders made for `path` are removed
    again when the write fails and they are empty."""
    path = Path(path)
    made: list[Path] = []
    try:
        made = make_folder(path.parent)
        for stale in path.parent.glob(f".{path.name}.*.partial"):
            stale.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as error:  # a read-only or missing folder: name the output, not a temporary
        remove_empty_folders(made)
        raise write_failure(path, error, _free_bytes(path.parent)) or WriteError(
            error.errno, f"{path}: not written ({error.strerror or error}).") from None
    if _held_folders:
        _held_folders[-1].extend(made)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield Path(tmp)
        if _held_renames:
            _held_renames[-1].append((Path(tmp), path))
        else:
            os.replace(tmp, path)
    except BaseException as error:
        free = _free_bytes(path.parent)  # before the partial file gives its space back
        Path(tmp).unlink(missing_ok=True)
        remove_empty_folders(made)
        failure = write_failure(path, error, free)
        if failure is not None:
            raise failure from None
        raise


@contextmanager
def all_or_none() -> Iterator[None]:
    """The outputs written (by :func:`atomic_path`) inside this block appear together when it
    ends without error, or none of them does, nor a folder made for them: a step with several
    outputs (train, validation and test of a prepared dataset; the files of a Kaldi data
    directory) never leaves some of them behind for a later step to trust."""
    renames: list[tuple[Path, Path]] = []
    folders: list[Path] = []
    _held_renames.append(renames)
    _held_folders.append(folders)
    try:
        yield
    except BaseException:
        for tmp, _ in renames:
            tmp.unlink(missing_ok=True)
        remove_empty_folders(folders)
        raise
    finally:
        _held_renames.pop()
        _held_folders.pop()
    if _held_renames:  # an enclosing block decides
        _held_renames[-1].extend(renames)
        _held_folders[-1].extend(folders)
        return
    done: list[Path] = []
    try:
        for tmp, path in renames:
            os.replace(tmp, path)
            done.append(path)
    except OSError as error:
        for tmp, _ in renames:
            tmp.unlink(missing_ok=True)
        for renamed in done:
            renamed.unlink(missing_ok=True)
        remove_empty_folders(folders)
        names = ", ".join(p.name for _, p in renames)
        raise WriteError(error.errno, f"{path}: not written ({error.strerror or error}); none of {names} was "
                                      f"kept.") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, obj: Any) -> None:
    """Strict JSON: a NaN or infinity is refused (it is not JSON, and it is never a result)."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)
    except ValueError:
        raise ValueError(f"{path}: not written, it would hold a NaN or infinite number") from None
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_ark_scp(matrices: Iterable[tuple[str, Any]], ark: str | Path, scp: str | Path) -> int:
    """Kaldi archive + script file of (key, matrix) pairs (via kaldiio), both atomic; the
    script file names the final archive by its absolute path (move the folder and the script
    file must be rewritten, as in Kaldi). Returns the number of matrices."""
    import kaldiio

    count = 0
    with atomic_path(ark) as tmp_ark, atomic_path(scp) as tmp_scp:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
            for key, matrix in matrices:
                writer(key, matrix)
                count += 1
        # the script file names the temporary archive: point it at the final one, by its
        # absolute path, so that Kaldi tools run from any folder can open it
        Path(tmp_scp).write_text(Path(tmp_scp).read_text().replace(str(tmp_ark), str(Path(ark).resolve())))
    return count


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


# --- one writer per output folder -----------------------------------------------------------

_held_outdirs: dict[str, int] = {}  # kept open for the life of the process: the kernel frees the lock when it ends


class OutdirInUse(RuntimeError):
    """Another run is writing the same output folder."""


def hold_outdir(outdir: str | Path, owner: str) -> None:
    """Take the output folder for this process, or refuse in one sentence naming the run that
    has it. Snakemake locks a working directory, not an output folder: two working directories
    whose configs name one `outdir` would run the same jobs and clobber each other's files."""
    import fcntl
    import socket

    outdir = Path(outdir).resolve()
    if str(outdir) in _held_outdirs:
        return
    outdir.mkdir(parents=True, exist_ok=True)
    lock = outdir / ".gradual-transfer.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise OutdirInUse(f"{outdir}: another run is writing this outdir ({holder}). Wait for it to finish, or "
                          f"set another outdir for this one.") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{owner}, pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    _held_outdirs[str(outdir)] = fd
