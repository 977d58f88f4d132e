"""A Hugging Face ``evaluate`` module of ``frs_hf``:
``evaluate.load(frs_hf.metric_path('attack_success_rate'))`` loads it
offline. Abstentions are ``-1`` in ``predictions``, missing radii ``-1`` in ``radii``."""

from frs_hf.evaluation import metrics

# _base as a module, not its class: evaluate loads the first Metric subclass a module's namespace holds.
from frs_hf.metrics import _base, as_answers


class AttackSuccessRate(_base.FRSMetric):
    """Attack success rate on triggered texts: the share predicted as the attacker's target (no abstention counts)."""

    inputs = "predictions, references (true labels, never the target); target_label (int)"
    with_radii = False

    def _compute(self, predictions, references, target_label, **_):
        summary = metrics.summarize_attack(references, as_answers(predictions), target_label)
        return {"attack_success_rate": summary["attack_success_rate"]}
