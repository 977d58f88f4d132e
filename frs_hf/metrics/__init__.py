"""The project's metrics as Hugging Face ``evaluate`` modules, loadable offline from the installed package.

    >>> import evaluate
    >>> from frs_hf.metrics import metric_path
    >>> certified = evaluate.load(metric_path("certified_accuracy"))
    >>> certified.compute(predictions=[1, -1, 0], references=[1, 1, 1], radii=[2, -1, 0], radius=1)
    {'certified_accuracy': 0.3333333333333333}

Each module is a thin ``evaluate.Metric`` around the pure functions of :mod:`frs_hf.evaluation.metrics`, which
``certify_dataset``, ``FRSTrainer`` and ``frs-hf evaluate`` use directly: one implementation. Abstentions are
``-1`` in ``predictions`` (and missing radii ``-1`` in ``radii``); every module accepts the inputs of the others,
so ``evaluate.combine`` can compute several at once.
"""

from __future__ import annotations

from importlib.resources import files

FEATURES = {"predictions": "int64", "references": "int64"}
"""Every module's inputs (``radii`` too where a radius is needed): class ids, ``-1`` for an abstention."""

METRICS = ("certified_accuracy", "mean_certified_radius", "abstention_rate", "attack_success_rate", "poisoned_accuracy")


def metric_path(name: str) -> str:
    """The folder ``evaluate.load`` takes for one of :data:`METRICS` (no Hub access needed)."""
    if name not in METRICS:
        raise ValueError(f"Unknown frs_hf metric {name!r}; choose one of {', '.join(METRICS)}.")
    return str(files(__name__) / name)


def as_answers(values) -> list[int | None]:
    """``-1`` (an abstention, or no radius) as None, as the functions of :mod:`frs_hf.evaluation.metrics` take it."""
    return [None if v is None or v < 0 else int(v) for v in values]
