"""What a design can claim, said before it runs (gradual_transfer.claims): the units each test
rests on, read off the grid as the tables count them, the smallest exact p, and whether an
onset (fixed sequence) or a per-l_c Holm adjustment can reach 0.05."""

from __future__ import annotations

import pytest

from gradual_transfer.claims import designs, units_needed
from gradual_transfer.config import validate_config
from gradual_transfer.statistics import smallest_p


def by_pair(config: dict) -> dict:
    return {(d.experiment, d.family, d.pairs[0]): d for d in designs(validate_config(config, check_data=False))}


def test_the_papers_design(paper_config):
    found = by_pair(paper_config)
    images = found[("images", "copy", ("cifar10", "cifar100"))]
    assert (images.unit, images.n_units, images.key) == ("seed", 1, "experiments.images.seeds")
    assert len(images.pairs) == 6 and not images.can_test
    assert "6 seeds would allow an onset" in images.sentence()
    assert "per-l_c Holm would need 8 over densenet40's 5 l_c" in images.sentence()
    asr_to_ser = found[("speech", "copy", ("asr", "ser"))]
    assert (asr_to_ser.unit, asr_to_ser.n_units, asr_to_ser.key) == ("fold", 8, "tasks.ser.folds")
    assert asr_to_ser.can_test and dict(asr_to_ser.lc_counts) == {"model_a": 6, "model_b": 7}
    # 8 folds: Holm reaches 6 · 2/256 = 0.047 over Model A's 6 l_c, never over Model B's 7
    assert asr_to_ser.holm_reachable(6) and not asr_to_ser.holm_reachable(7)
    assert "over model_b's 7 l_c cannot go below 0.05 (smallest adjusted p 0.0547; 9 folds would)" \
        in asr_to_ser.sentence()
    ser_to_asr = found[("speech", "copy", ("ser", "asr"))]
    assert (ser_to_asr.n_units, ser_to_asr.key) == (8, "experiments.speech.ser_source_folds")


def test_seeds_and_controls_change_what_can_be_claimed(paper_config):
    paper_config["experiments"]["images"]["seeds"] = [0, 1, 2, 3, 4, 5]
    paper_config["experiments"]["images"]["self_transfer"] = True
    images = by_pair(paper_config)[("images", "copy", ("cifar10", "cifar100"))]
    assert images.n_units == 6 and images.can_test and images.measure == "source_features_cost"
    assert "an onset of source_features_cost can be declared" in images.sentence()
    # seeds of one SER fold are one unit: more seeds do not add units to a curve over folds
    paper_config["experiments"]["speech"]["seeds"] = [0, 1, 2]
    paper_config["tasks"]["ser"]["folds"] = [1, 2]
    paper_config["experiments"]["speech"]["ser_source_folds"] = [1]
    speech = by_pair(paper_config)[("speech", "copy", ("asr", "ser"))]
    assert (speech.unit, speech.n_units) == ("fold", 2) and not speech.can_test


def test_the_demo_shows_a_test(demo_config):
    asr_to_ser = by_pair(demo_config)[("speech", "copy", ("asr", "ser"))]
    assert asr_to_ser.n_units == 6 and asr_to_ser.can_test
    assert not asr_to_ser.holm_reachable(3)  # 3 · 2/64 = 0.094: only the ordered test can declare onsets


@pytest.mark.parametrize("tests, units", [(1, 6), (5, 8), (6, 8), (7, 9)])
def test_units_needed(tests, units):
    assert units_needed(tests) == units
    assert tests * smallest_p(units) < 0.05 <= tests * smallest_p(units - 1)
