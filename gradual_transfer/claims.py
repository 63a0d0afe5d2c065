"""What a run's design can conclude, said before any job runs.

Every test of the transferability table is an exact two-sided signed-rank test over units of
replication (:mod:`gradual_transfer.statistics`): the folds of a curve where its runs carry
folds, else its seeds. With n units the smallest p any outcome can give is 2/2^n, so the number
of units decides, before a single model is trained, whether a curve can ever show a significant
gap or an onset:

- a test at one l_c, and an onset by the fixed sequence (each l_c at the full level), need
  2/2^n < ALPHA: n ≥ 6;
- Holm over the m swept l_c of a curve (for a reader testing each l_c alone) needs
  m · 2/2^n < ALPHA: 8 units for 5 l_c, 9 for 7.

The units are read off the grid itself (:func:`gradual_transfer.grid.training_jobs`), exactly as
the tables will count them, so what is said here is what the tables will be able to show.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from gradual_transfer.grid import (FAMILIES, SPEECH_EXPERIMENT, Job, budgets_match, family_budget, self_transfer,
                                   task_folds, training_jobs, upper_groups)
from gradual_transfer.statistics import ALPHA, MIN_UNITS_FOR_TEST, smallest_p, unit_of_replication
from gradual_transfer.tables import DECOMPOSITION, budget_text


def units_needed(tests: int) -> int:
    """The fewest units whose smallest exact p, times `tests` (Holm's first factor), is below ALPHA."""
    return next(n for n in itertools.count(1) if tests * smallest_p(n) < ALPHA)


@dataclass(frozen=True)
class Design:
    """The transfers of one experiment and family whose curves rest on the same units:
    ``pairs`` (source, target), each curve on ``n_units`` ``unit``s set by ``key``, with
    ``lc_counts`` swept l_c per architecture; the onset tests ``measure``."""

    experiment: str
    family: str
    unit: str
    n_units: int
    key: str
    pairs: tuple[tuple[str, str], ...]
    lc_counts: tuple[tuple[str, int], ...]
    measure: str

    @property
    def can_test(self) -> bool:
        """Whether a single test, and so an onset by the fixed sequence, can reach p < ALPHA."""
        return self.n_units >= MIN_UNITS_FOR_TEST

    def holm_reachable(self, lc_count: int) -> bool:
        return lc_count * smallest_p(self.n_units) < ALPHA

    def sentence(self) -> str:
        pairs = ", ".join(f"{s} → {t}" for s, t in self.pairs)
        plural = "s" * (self.n_units != 1)
        head = (f"{self.experiment} ({self.family}), {pairs}: {self.n_units} {self.unit}{plural} per test "
                f"({self.key})")
        more = f"{self.unit}s" if self.unit == "seed" else f"{self.unit}s ({self.key})"
        if not self.can_test:
            return (f"{head}: no test can reach p < {ALPHA} (smallest exact p {smallest_p(self.n_units):.3g}), so no "
                    f"onset can be declared; {MIN_UNITS_FOR_TEST} {more} would allow an onset (fixed sequence), "
                    "per-l_c Holm would need "
                    + ", ".join(f"{units_needed(m)} over {arch}'s {m} l_c" for arch, m in self.lc_counts) + ".")
        holm = []
        for arch, m in self.lc_counts:
            bound = m * smallest_p(self.n_units)
            holm.append(f"over {arch}'s {m} l_c {'can' if bound < ALPHA else 'cannot'} go below {ALPHA} "
                        f"(smallest adjusted p {min(bound, 1.0):.3g}"
                        + ("" if bound < ALPHA else f"; {units_needed(m)} {self.unit}s would") + ")")
        return (f"{head}: smallest exact p {smallest_p(self.n_units):.3g}; an onset of {self.measure} can be "
                f"declared (fixed sequence from the deepest l_c); per-l_c Holm " + ", ".join(holm) + ".")


def _key(config: dict, job: Job, unit: str) -> str:
    """The setting that sets how many units a transfer's curve has."""
    if unit == "seed":
        return f"experiments.{job.experiment}.seeds"
    if task_folds(config, job.target) != [0]:
        return f"tasks.{job.target}.folds"
    return f"experiments.{SPEECH_EXPERIMENT}.ser_source_folds"  # SER → ASR: the SER source folds


def designs(config: dict) -> list[Design]:
    """Every experiment's transfers grouped by the units their tests rest on, in grid order."""
    curves: dict[tuple, list[Job]] = {}
    for job in training_jobs(config):
        if job.kind == "transfer":
            curves.setdefault((job.experiment, job.upper_groups, job.source, job.target, job.arch), []).append(job)
    groups: dict[tuple, dict] = {}
    for (experiment, family, source, target, arch), jobs in curves.items():
        unit = unit_of_replication([job.fold for job in jobs])
        n = len({getattr(job, unit) for job in jobs})
        group = groups.setdefault((experiment, family, unit, n, _key(config, jobs[0], unit)), {"pairs": [], "lcs": {}})
        if (source, target) not in group["pairs"]:
            group["pairs"].append((source, target))
        group["lcs"][arch] = len({job.lc for job in jobs})
    result = []
    for (experiment, family, unit, n, key), group in groups.items():
        measure = DECOMPOSITION[family][1] if self_transfer(config, experiment) else "the gap"
        result.append(Design(experiment, family, unit, n, key, tuple(group["pairs"]), tuple(group["lcs"].items()),
                             measure))
    return result


def claims_report(config: dict) -> list[str]:
    """What each experiment can claim, one sentence per group of curves (:func:`designs`)."""
    return [design.sentence() for design in designs(config)]


def claims_warnings(config: dict) -> list[str]:
    """The sentences of the groups that can declare no onset at all: a warning, not a refusal."""
    return [design.sentence() for design in designs(config) if not design.can_test]


def _targets(config: dict, experiment: str) -> list[str]:
    """The tasks the experiment transfers into, in grid order."""
    targets = [job.target for job in training_jobs(config) if job.experiment == experiment and job.kind == "transfer"]
    return list(dict.fromkeys(targets))


def family_contrast(config: dict, experiment: str) -> dict[str, bool]:
    """Per target task of the experiment, whether a contrast between its two families measures
    their initialisation alone: both families ran and train into it with the same budget
    (:func:`gradual_transfer.grid.budgets_match`). False everywhere for an experiment of one
    family. Figures 1 and 2 draw both families in one panel only where this holds."""
    both = len(upper_groups(config, experiment)) == len(FAMILIES)
    return {target: both and budgets_match(config, target) for target in _targets(config, experiment)}


def family_contrast_sentence(config: dict, experiment: str) -> str:
    """Whether the experiment's families compare, in words, with each family's budget: empty for
    an experiment of one family."""
    if len(upper_groups(config, experiment)) < len(FAMILIES):
        return ""
    by_budget: dict[tuple, list[str]] = {}
    for target, comparable in family_contrast(config, experiment).items():
        budgets = tuple(budget_text(family_budget(config, target, family)) for family in FAMILIES)
        by_budget.setdefault((comparable, budgets), []).append(target)
    sentences = []
    for (comparable, budgets), targets in by_budget.items():
        each = "; ".join(f"``{family}``: {text}" for family, text in zip(FAMILIES, budgets))
        into = ", ".join(targets)
        if comparable:
            sentences.append(f"Into {into} both families train with the same budget ({each}): the figures draw them "
                             "in one panel, and their difference measures how the groups above l_c start.")
        else:
            sentences.append(f"Into {into} the families train with different budgets ({each}), so a difference "
                             "between them mixes how the groups above l_c start with how long they train: the "
                             "figures draw each family in its own panel and no contrast between them.")
    return " ".join(sentences)


HEADER = (f"What this design can claim (exact two-sided signed-rank tests over units of replication, "
          f"on the test split, at {ALPHA}):")
