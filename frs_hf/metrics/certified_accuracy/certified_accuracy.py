"""A Hugging Face ``evaluate`` module of ``frs_hf``:
``evaluate.load(frs_hf.metric_path('certified_accuracy'))`` loads it
offline. Abstentions are ``-1`` in ``predictions``, missing radii ``-1`` in ``radii``."""

from frs_hf.evaluation import metrics

# _base as a module, not its class: evaluate loads the first Metric subclass a module's namespace holds.
from frs_hf.metrics import _base, as_answers


class CertifiedAccuracy(_base.FRSMetric):
    """Certified accuracy at radius r: correct and certified with a radius of at least r (Cohen et al. 2019)."""

    inputs = "predictions, references, radii; radius (int, default 0)"
    with_radii = True

    def _compute(self, predictions, references, radii, radius=0, **_):
        answers, radii = as_answers(predictions), as_answers(radii)
        return {"certified_accuracy": metrics.certified_accuracy(references, answers, radii, radius)}
