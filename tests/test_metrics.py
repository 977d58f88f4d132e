"""The ``evaluate`` modules of ``frs_hf.metrics``: loaded offline by path, equal to the pure functions."""

from __future__ import annotations

import evaluate
import numpy as np
import pytest

from frs_hf.evaluation import metrics
from frs_hf.metrics import METRICS, as_answers, metric_path


@pytest.fixture(scope="module")
def runs():
    rng = np.random.default_rng(0)
    references = rng.integers(0, 3, 60)
    predictions = np.where(rng.random(60) < 0.2, -1, np.where(rng.random(60) < 0.7, references, (references + 1) % 3))
    radii = np.where(predictions < 0, -1, rng.integers(0, 4, 60))
    return predictions.tolist(), references.tolist(), radii.tolist()


@pytest.fixture(scope="module")
def loaded():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")  # as on a machine without the Hub: loaded by path from the package
        return {name: evaluate.load(metric_path(name)) for name in METRICS}


def test_modules_load_offline_and_match_the_pure_functions(loaded, runs):
    predictions, references, radii = runs
    answers, radius_values = as_answers(predictions), as_answers(radii)
    for r in range(4):
        got = loaded["certified_accuracy"].compute(
            predictions=predictions, references=references, radii=radii, radius=r
        )
        assert got == {"certified_accuracy": metrics.certified_accuracy(references, answers, radius_values, r)}
    got = loaded["mean_certified_radius"].compute(predictions=predictions, references=references, radii=radii)
    assert got == {"mean_certified_radius": metrics.mean_certified_radius(references, answers, radius_values)}
    got = loaded["abstention_rate"].compute(predictions=predictions, references=references)
    assert got == {"abstention_rate": pytest.approx(np.mean(np.array(predictions) < 0))}
    # On triggered texts: true labels are never the target.
    triggered = [(p, y) for p, y in zip(predictions, references, strict=True) if y != 2]
    p, y = [t[0] for t in triggered], [t[1] for t in triggered]
    summary = metrics.summarize_attack(y, as_answers(p), target_label=2)
    assert loaded["attack_success_rate"].compute(predictions=p, references=y, target_label=2) == {
        "attack_success_rate": summary["attack_success_rate"]
    }
    assert loaded["poisoned_accuracy"].compute(predictions=p, references=y, target_label=2) == {
        "poisoned_accuracy": summary["poisoned_accuracy"]
    }


def test_modules_combine(loaded, runs):
    predictions, references, radii = runs
    combined = evaluate.combine(
        [loaded["certified_accuracy"], loaded["mean_certified_radius"], loaded["abstention_rate"]]
    )
    got = combined.compute(predictions=predictions, references=references, radii=radii)
    assert set(got) == {"certified_accuracy", "mean_certified_radius", "abstention_rate"}
    assert got["certified_accuracy"] == metrics.certified_accuracy(
        references, as_answers(predictions), as_answers(radii), 0
    )


def test_metric_path_names_the_choices():
    with pytest.raises(ValueError, match="certified_accuracy"):
        metric_path("accuracy")
