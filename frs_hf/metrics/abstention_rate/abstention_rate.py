"""A Hugging Face ``evaluate`` module of ``frs_hf``:
``evaluate.load(frs_hf.metric_path('abstention_rate'))`` loads it
offline. Abstentions are ``-1`` in ``predictions``, missing radii ``-1`` in ``radii``."""

from frs_hf.evaluation import metrics

# _base as a module, not its class: evaluate loads the first Metric subclass a module's namespace holds.
from frs_hf.metrics import _base, as_answers


class AbstentionRate(_base.FRSMetric):
    """Abstention rate: the share of examples on which the smoothed classifier abstained."""

    inputs = "predictions, references"
    with_radii = False

    def _compute(self, predictions, references, **_):
        return {"abstention_rate": metrics.abstention_rate(as_answers(predictions))}
