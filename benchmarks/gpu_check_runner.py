"""How benchmarks/gpu_check.py runs so that it always reports, shared with its tests.

- :class:`Report`: the JSON, rewritten whole (atomically) after every check and every row, so a
  run stopped anywhere leaves what it measured. Each part, each check of a part and each row of
  a table runs guarded: a failure is recorded with its error and the rest goes on.
- A time budget (``--budget SECONDS``): parts and rows that would start too late are recorded as
  skipped, and a watchdog ends the process at the budget (child processes killed first), saying
  where it stopped. One call never runs past it.
- :func:`cuda_status`: CUDA that does not start (or has no kernels for the GPU) is recorded with
  the driver's and PyTorch's versions and the reason, instead of a crash.
- :func:`run_children`: the lease check's child jobs, each in a process group of its own, killed
  with it when late.

It needs torch (imported late), the standard library and the library's device modules only.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

PART_NEEDS = (20.0, 0.1)  # a part is not started with less of the budget left than 20 s or a tenth of it
ROW_NEEDS = (5.0, 0.02)  # nor a check or a row with less than 5 s or a fiftieth
CHILDREN: set[subprocess.Popen] = set()  # running child processes, killed when the budget runs out


class Report(dict):
    """The run's results, written to `path` whole whenever they change."""

    def __init__(self, path: Path | None, budget_s: float | None = None, **header) -> None:
        super().__init__(header, budget_s=budget_s)
        self.path, self.budget_s = path, budget_s
        self.deadline = time.monotonic() + budget_s if budget_s else math.inf
        self.doing = "start-up"
        self._lock = threading.RLock()

    def left_s(self) -> float:
        return self.deadline - time.monotonic()

    def has_time(self, needs: tuple[float, float]) -> bool:
        seconds, share = needs
        return self.budget_s is None or self.left_s() >= min(seconds, share * self.budget_s)

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            for _ in range(3):  # (the watchdog's thread may save while the main thread adds a row)
                try:
                    text = json.dumps(self, indent=1) + "\n"
                    break
                except RuntimeError:
                    continue
            else:
                return
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.path)

    def _guarded(self, label: str, work: Callable[[], object]) -> tuple[object, str | None]:
        self.doing = label
        try:
            return work(), None
        except Exception as error:  # noqa: BLE001 - one GPU run should report everything it can
            return None, f"{type(error).__name__}: {error}"

    def check(self, part: str, key: str, work: Callable[[], object]) -> object:
        """One check of a part: its value under `key` (or its error), saved at once."""
        entry = self.setdefault(part, {})
        if not self.has_time(ROW_NEEDS):
            entry.setdefault("skipped", []).append(key)
            self.save()
            return None
        value, error = self._guarded(f"{part}: {key}", work)
        entry[key] = value if error is None else {"error": error}
        self.save()
        print(json.dumps({part: {key: entry[key]}}, default=str), flush=True)
        return value

    def row(self, part: str, table: str, row: dict, work: Callable[[], dict]) -> dict:
        """One row of a part's table: `row` updated by what `work` measures (or its error), saved."""
        rows = self.setdefault(part, {}).setdefault(table, [])
        if not self.has_time(ROW_NEEDS):
            row["skipped"] = "the budget ran out"
        else:
            measured, error = self._guarded(f"{part}: {table} {row}", work)
            row.update({"error": error} if error else measured or {})
        rows.append(row)
        self.save()
        print(json.dumps(row), flush=True)
        return row

    def start_watchdog(self) -> None:
        """End the process at the budget, whatever it is doing, with the report saying where."""
        if self.budget_s:
            timer = threading.Timer(self.budget_s, self._out_of_time)
            timer.daemon = True
            timer.start()

    def _out_of_time(self) -> None:
        with self._lock:  # held to the end: the main thread, freed by the kill, waits at its next save
            self["stopped"] = f"the budget of {self.budget_s:g} s ran out during {self.doing}"
            kill_children()
            self.save()
            print(json.dumps({"stopped": self["stopped"]}), flush=True)
            sys.stderr.flush()
            os._exit(0)


def run_parts(report: Report, parts: dict[str, Callable[[], object]]) -> None:
    """Each part guarded: a failure is its entry (with the end of its traceback) and the next
    part runs; a part that would start with too little of the budget left is skipped. A part
    returns its entry, or fills it itself through ``report.check`` and ``report.row``."""
    for name, part in parts.items():
        if not report.has_time(PART_NEEDS):
            report.setdefault("skipped", {})[name] = "the budget ran out"
            report.save()
            continue
        started = time.perf_counter()
        report.doing = name
        try:
            result = part()
            if result is not None:
                report[name] = result
        except Exception as error:  # noqa: BLE001 - one GPU run should report everything it can
            report[name] = {**(report.get(name) or {}), "error": f"{type(error).__name__}: {error}",
                            "traceback": traceback.format_exc()[-3000:]}
        report.setdefault("seconds", {})[name] = round(time.perf_counter() - started, 1)
        report.save()
        print(json.dumps({name: report.get(name)}, indent=1, default=str), flush=True)


def cuda_status() -> dict:
    """Whether CUDA starts and has kernels for the GPU, with the versions and, if not, why."""
    from gradual_transfer import gpu_support

    torch_view, driver = gpu_support.torch_cuda(), gpu_support.nvidia_driver()
    status = {"available": torch_view.available, "torch": torch_view.version, "torch_cuda": torch_view.cuda,
              "driver": driver.version or None, "gpus_the_driver_shows": sorted(set(driver.gpus.values())),
              "name": torch_view.name or None, "capability": torch_view.capability}
    problem = gpu_support.cuda_problem(torch_view, driver)
    if problem is None and not torch_view.available:
        listed = os.environ.get("CUDA_VISIBLE_DEVICES")
        problem = ("CUDA_VISIBLE_DEVICES is empty: CUDA shows no device" if listed is not None and listed.strip()
                   in ("", "-1") else "no NVIDIA driver shows a GPU here (no /proc/driver/nvidia/gpus, no nvidia-smi)")
        problem += f"; PyTorch {torch_view.version} (CUDA {torch_view.cuda}) cannot start CUDA"
        problem += f" ({torch_view.said})" if torch_view.said else ""
    status["usable"] = problem is None
    if problem:
        status["reason"] = problem
    return status


def run_children(code: str, jobs: int, timeout: float, env: dict) -> list[dict]:
    """`jobs` Python children running `code` at once, each answering one JSON line; one still
    running after `timeout` s is killed with its process group and answers with the error."""
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, start_new_session=True) for _ in range(jobs)]
    CHILDREN.update(procs)
    deadline = time.monotonic() + timeout
    answers = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill(proc)
            out, err = proc.communicate()
            answers.append({"pid": proc.pid, "error": f"killed after {timeout:g} s", "said": out[-300:]})
            continue
        lines = out.strip().splitlines()
        try:
            answers.append(json.loads(lines[-1]))
        except (IndexError, json.JSONDecodeError):
            answers.append({"pid": proc.pid, "error": f"exit {proc.returncode}", "said": (out + err)[-300:]})
    CHILDREN.difference_update(procs)
    return answers


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own group (start_new_session): anything it started too
    except ProcessLookupError:
        pass


def kill_children() -> None:
    for proc in list(CHILDREN):
        _kill(proc)
