"""A Hugging Face ``evaluate`` module of ``frs_hf``:
``evaluate.load(frs_hf.metric_path('poisoned_accuracy'))`` loads it
offline. Abstentions are ``-1`` in ``predictions``, missing radii ``-1`` in ``radii``."""

from frs_hf.evaluation import metrics

# _base as a module, not its class: evaluate loads the first Metric subclass a module's namespace holds.
from frs_hf.metrics import _base, as_answers


class PoisonedAccuracy(_base.FRSMetric):
    """Poisoned accuracy on triggered texts: the share still given their true label."""

    inputs = "predictions, references (true labels, never the target); target_label (int)"
    with_radii = False

    def _compute(self, predictions, references, target_label, **_):
        summary = metrics.summarize_attack(references, as_answers(predictions), target_label)
        return {"poisoned_accuracy": summary["poisoned_accuracy"]}
