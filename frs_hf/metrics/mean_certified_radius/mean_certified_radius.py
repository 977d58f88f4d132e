"""A Hugging Face ``evaluate`` module of ``frs_hf``:
``evaluate.load(frs_hf.metric_path('mean_certified_radius'))`` loads it
offline. Abstentions are ``-1`` in ``predictions``, missing radii ``-1`` in ``radii``."""

from frs_hf.evaluation import metrics

# _base as a module, not its class: evaluate loads the first Metric subclass a module's namespace holds.
from frs_hf.metrics import _base, as_answers


class MeanCertifiedRadius(_base.FRSMetric):
    """Mean certified radius (ACR): the certified radius where the prediction is correct, else 0."""

    inputs = "predictions, references, radii"
    with_radii = True

    def _compute(self, predictions, references, radii, **_):
        answers, radii = as_answers(predictions), as_answers(radii)
        return {"mean_certified_radius": metrics.mean_certified_radius(references, answers, radii)}
