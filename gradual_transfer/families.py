"""The two families of transfer, named once: how a transfer's layer groups above l_c start.

- ``copy`` (the paper): every group comes from the source model, the groups above l_c are
  fine-tuned with the target's ``finetune`` recipe;
- ``reinit`` (Yosinski et al., NIPS 2014): only the first l_c groups come from the source model,
  the groups above them start at random and train with the target's ``training`` recipe.

The config contract lists them (``experiments.<exp>.upper_groups``, an enumeration of the schema
that tests/test_families.py holds to :data:`FAMILIES`); :func:`family_problem` is the one rule
for a family that enters otherwise (a job's identity, the engine's call, a command-line flag).
No torch here: the grid and the engine both read it.
"""

from __future__ import annotations

FAMILIES = ("copy", "reinit")


def family_problem(upper_groups: str, lc: int | None) -> str | None:
    """Why a transfer of this family cannot copy its first `lc` groups (None for a primary), or
    None when it can."""
    if upper_groups not in FAMILIES:
        return f"upper_groups is one of {', '.join(FAMILIES)}, not {upper_groups!r}"
    if upper_groups == "reinit" and not lc:
        return ("a reinit transfer copies its first l_c ≥ 1 groups and re-initialises the rest "
                "(l_c = 0 would copy nothing)")
    return None
