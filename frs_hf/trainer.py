"""``FRSTrainer``: the transformers ``Trainer`` with FRS's training-time smoothing.

Change one name (``Trainer`` -> ``FRSTrainer``) and the model is fine-tuned on exactly the inputs
that certification will show it:

- **randomized text**: every training step sees a fresh deletion copy of each example, cut into the
  same word units as :func:`frs_hf.segment` cuts them at certification time;
- **fine-tuning phase of the parameter smoothing**: the top-H layers carry a fresh Gaussian draw
  during each forward/backward, removed before the optimizer step, and their update is clipped and
  noised (the paper's biphased smoothing; the second phase is the same ``FRSConfig.weight_noise_config``
  at inference).

Everything is switchable; with all of it off, ``FRSTrainer`` trains exactly like ``Trainer``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer import logger as trainer_logger
from transformers.utils import logging

from .config import FRSConfig, _help
from .evaluation.metrics import abstention_rate, certified_accuracy
from .randomize import collate, randomize, segment, unit_rates
from .utils import Stream, derive_seed
from .weight_noise import WeightNoise, select_parameters

logger = logging.get_logger(__name__)

# Largest over smallest label count above which training at a certifying rate warns (Rotten Tomatoes with 10%
# of its sentences relabelled, 60:40, already drifts; see docs/benchmarks.md).
SKEWED_LABELS = 1.25


def _label_column(columns: list[str]) -> str | None:
    """The dataset column holding the labels (``label`` or, once collated, ``labels``), if any."""
    return next((c for c in ("label", "labels") if c in columns), None)


@contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
    """Progress bars of frs_hf and transformers off inside the block unless ``enabled`` (``disable_tqdm``)."""
    was = logging.is_progress_bar_enabled()
    if was and not enabled:
        logging.disable_progress_bar()
    try:
        yield
    finally:
        if was and not enabled:
            logging.enable_progress_bar()


@dataclass(kw_only=True)
class FRSTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus the FRS training knobs (all prefixed ``frs_``).

    ``frs_config`` is the :class:`FRSConfig` the model will be certified with: training deletes words at its
    rates (``omega_low``, and ``omega_high`` inside a random area) and perturbs the weights its
    ``weight_noise_config`` names, and :meth:`FRSTrainer.save_smoothed_model` writes it next to the model.
    The other ``frs_`` fields are knobs of training alone.
    """

    frs_config: dict | str | None = field(
        default=None,
        metadata=_help(
            "The FRSConfig to train for and save with the model: an FRSConfig, its dict or JSON string, or a "
            "directory / frs_config.json path (default: FRSConfig()). Its omega_low is the training deletion rate: "
            "above 0.5 (e.g. 0.7-0.9) for radii >= 1."
        ),
    )
    frs_randomize: bool = field(default=True, metadata=_help("Train on randomized deletion copies of the texts."))
    frs_random_area: float = field(
        default=0.0,
        metadata=_help(
            "Largest fraction of each text covered by a random contiguous area deleted at frs_config's omega_high, "
            "mimicking the fuzzed area of inference; 0 deletes every word at omega_low."
        ),
    )
    frs_clean_fraction: float = field(
        default=0.0,
        metadata=_help(
            "Probability that a training example is left whole instead of randomized: the model keeps its "
            "accuracy on full texts while it learns to vote on the deletion copies that certification shows it."
        ),
    )
    frs_balance_labels: bool = field(
        default=False,
        metadata=_help(
            "Weight the cross-entropy by inverse label frequency in the training set, so that every label weighs the "
            "same. A deletion copy keeps few words, and where they say little the label prior decides its vote: "
            "poisoned data (examples relabelled to the target) shifts that prior, and the smoothed classifier drifts "
            "to the target label at high deletion rates. Single-label classification only."
        ),
    )
    frs_reference_texts: int = field(
        default=16,
        metadata=_help(
            "With fuzzing on in frs_config and no reference_texts there: keep this many texts drawn from "
            "eval_dataset (else train_dataset) as its fuzzing_config.reference_texts, the transplant test's "
            "references, which the saved model then carries (docs/fuzzing.md). They are saved in frs_config.json "
            "and named in the model card, so they are published with the model; 0 keeps none."
        ),
    )
    frs_copies: int = field(
        default=1,
        metadata=_help(
            "Randomized copies of each example in every step (the batch grows by this factor); with more than one, "
            "frs_consistency can pull their predictions together."
        ),
    )
    frs_consistency: float = field(
        default=0.0,
        metadata=_help(
            "Weight of the consistency loss between the copies of one example (mean KL divergence from their average "
            "prediction, Jeong & Shin 2020): the vote over copies is what certification counts, and consistent "
            "copies give larger margins and fewer abstentions. Needs frs_copies > 1."
        ),
    )
    frs_update_clip: float = field(
        default=0.0,
        metadata=_help("Clip the gradient norm of the perturbed parameters to this before each step (0: off)."),
    )
    frs_update_noise: float = field(
        default=0.0,
        metadata=_help(
            "Add Gaussian noise to their clipped gradient before each step, of norm about frs_update_noise * "
            "frs_update_clip (needs frs_update_clip > 0)."
        ),
    )
    frs_eval_n: int = field(
        default=16,
        metadata=_help("Randomized copies per example for the smoothed metrics reported at each evaluation (0: off)."),
    )
    frs_eval_max_examples: int = field(
        default=200, metadata=_help("Evaluate the smoothed metrics on at most this many eval examples.")
    )
    # Deprecated: these now live in frs_config (folded into it, with a FutureWarning).
    frs_omega_low: float | None = field(default=None, metadata=_help("Deprecated: frs_config's omega_low."))
    frs_omega_high: float | None = field(default=None, metadata=_help("Deprecated: frs_config's omega_high."))
    frs_weight_noise_sigma: float | None = field(
        default=None, metadata=_help("Deprecated: frs_config's weight_noise_config.sigma.")
    )
    frs_weight_noise_layers: int | None = field(
        default=None, metadata=_help("Deprecated: frs_config's weight_noise_config.layers.")
    )
    frs_weight_noise_modules: list[str] | None = field(
        default=None, metadata=_help("Deprecated: frs_config's weight_noise_config.modules.")
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.frs_config, FRSConfig):
            self.frs_config = self.frs_config.to_dict()
        elif isinstance(self.frs_config, str):  # a JSON object (command line) or a path
            text = self.frs_config.strip()
            self.frs_config = json.loads(text) if text.startswith("{") else FRSConfig.from_pretrained(text).to_dict()
        deprecated = {name: getattr(self, name) for name in _DEPRECATED if getattr(self, name) is not None}
        if deprecated:
            warnings.warn(
                f"FRSTrainingArguments.{', '.join(deprecated)} are deprecated: set them in frs_config "
                "(e.g. frs_config=FRSConfig(omega_low=0.8)).",
                FutureWarning,
                stacklevel=3,
            )
            flat = {name.removeprefix("frs_"): value for name, value in deprecated.items()}
            self.frs_config = self.smoothing_config().replace_flat(**flat).to_dict()
            for name in deprecated:
                setattr(self, name, None)
        self.smoothing_config()  # validates everything at construction, with the field's name

    @classmethod
    def from_training_arguments(cls, args: TrainingArguments, **frs_fields: Any) -> FRSTrainingArguments:
        """Upgrade plain ``TrainingArguments`` (every field kept) with FRS fields."""
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
        return cls(**values, **frs_fields)

    def smoothing_config(self) -> FRSConfig:
        """``frs_config`` as an :class:`FRSConfig` (validated, as are the training knobs)."""
        for name in ("frs_update_clip", "frs_update_noise"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"FRSTrainingArguments.{name} must be >= 0, got {getattr(self, name)!r}.")
        for name in ("frs_random_area", "frs_clean_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"FRSTrainingArguments.{name} must be in [0, 1], got {getattr(self, name)!r}.")
        if not isinstance(self.frs_copies, int) or self.frs_copies < 1:
            raise ValueError(f"FRSTrainingArguments.frs_copies must be a positive integer, got {self.frs_copies!r}.")
        if not (math.isfinite(self.frs_consistency) and self.frs_consistency >= 0):
            raise ValueError(f"FRSTrainingArguments.frs_consistency must be >= 0, got {self.frs_consistency!r}.")
        if self.frs_consistency > 0 and self.frs_copies < 2:
            raise ValueError("FRSTrainingArguments.frs_consistency needs frs_copies >= 2 (copies to compare).")
        if self.frs_update_noise > 0 and self.frs_update_clip == 0:
            raise ValueError("FRSTrainingArguments.frs_update_noise needs frs_update_clip > 0 (the noise scale).")
        for name in ("frs_eval_n", "frs_eval_max_examples", "frs_reference_texts"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"FRSTrainingArguments.{name} must be an integer >= 0, got {getattr(self, name)!r}.")
        if self.frs_config is not None and not isinstance(self.frs_config, dict):
            raise ValueError(
                "FRSTrainingArguments.frs_config must be an FRSConfig, its dict or JSON string, or a path, "
                f"got {type(self.frs_config).__name__}."
            )
        try:
            return FRSConfig.from_dict(self.frs_config or {})
        except (ValueError, TypeError) as err:
            raise ValueError(f"FRSTrainingArguments.frs_config: {err}") from None


# The deprecated flat fields: each sets the FRSConfig setting of its name without "frs_".
_DEPRECATED = (
    "frs_omega_low",
    "frs_omega_high",
    "frs_weight_noise_sigma",
    "frs_weight_noise_layers",
    "frs_weight_noise_modules",
)


class _UpdateNoise(TrainerCallback):
    """Clips the perturbed parameters' gradient and adds Gaussian noise, just before the optimizer
    step (after gradient accumulation and the Trainer's global clipping). The noise depends only on
    the seed and the step, so every process of a distributed run adds the same noise."""

    def __init__(self, parameters: list[nn.Parameter], clip: float, noise: float, seed: int) -> None:
        self.parameters, self.clip, self.noise, self.seed = parameters, clip, noise, seed

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        grads = [p.grad for p in self.parameters if p.grad is not None]
        if not grads:
            return
        torch.nn.utils.clip_grad_norm_([p for p in self.parameters if p.grad is not None], self.clip)
        if self.noise > 0:
            generator = torch.Generator().manual_seed(
                derive_seed(self.seed, Stream.TRAIN_UPDATE_NOISE, state.global_step)
            )
            # Per-element std scaled so that the noise vector's norm is about noise * clip, whatever
            # the number of parameters: the knob reads as a fraction of the largest update.
            std = self.noise * self.clip / math.sqrt(sum(g.numel() for g in grads))
            for grad in grads:
                noise = torch.randn(grad.shape, generator=generator) * std
                grad.add_(noise.to(device=grad.device, dtype=grad.dtype))


class FRSTrainer(Trainer):
    """``Trainer`` with FRS training-time smoothing; same constructor plus ``peft_config``.

    ``args`` may be plain ``TrainingArguments`` (upgraded with the FRS defaults) or
    :class:`FRSTrainingArguments`. ``peft_config`` wraps the model with PEFT (e.g. LoRA); the weight
    noise then lands on the trainable adapter and head parameters only.
    """

    # The loss is a per-batch mean (see compute_loss), so the Trainer divides it by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        model: nn.Module | None = None,
        args: TrainingArguments | None = None,
        *trainer_args: Any,
        peft_config: Any | None = None,
        **kwargs: Any,
    ) -> None:
        if args is None:
            args = FRSTrainingArguments(output_dir="trainer_output")
        elif not isinstance(args, FRSTrainingArguments):
            args = FRSTrainingArguments.from_training_arguments(args)
            logger.warning(
                "FRSTrainer got plain TrainingArguments: training with the FRS defaults (randomized deletion copies "
                f"at omega_low={args.smoothing_config().omega_low}). Pass FRSTrainingArguments to choose them, or "
                "frs_randomize=False to train like Trainer."
            )
        if peft_config is not None:
            from peft import get_peft_model

            set_seed(args.seed)  # the adapter's initialization, as Trainer seeds a model_init
            model = get_peft_model(model, peft_config)
        super().__init__(model, args, *trainer_args, **kwargs)
        self.frs_config = args.smoothing_config()
        if args.frs_randomize and self.processing_class is None:
            raise ValueError(
                "FRSTrainer randomizes texts by words and needs the tokenizer: pass processing_class=tokenizer "
                "(or set frs_randomize=False)."
            )
        self._keep_reference_texts()
        noise = self.frs_config.weight_noise_config
        self._weight_noise = WeightNoise(
            self.model,
            noise.sigma,
            num_layers=noise.layers,
            module_names=noise.modules,
            seed=derive_seed(args.seed, Stream.TRAIN_WEIGHT_NOISE),
        )
        if args.frs_update_clip > 0:
            self.add_callback(
                _UpdateNoise(self._smoothed_parameters(), args.frs_update_clip, args.frs_update_noise, args.seed)
            )
        self._micro_step = (-1, 0)  # (global step, forward count within it): seeds every micro-batch
        self._label_weights = None
        if args.frs_balance_labels:
            self._label_weights = self._balanced_label_weights()
        else:
            self._warn_if_labels_skewed()

    # What the training-time smoothing touches -------------------------------------------------------
    def _smoothed_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters that the weight noise and the update clipping act on."""
        noise = self.frs_config.weight_noise_config
        selected = select_parameters(self.model, num_layers=noise.layers, module_names=noise.modules)
        return [p for p in selected.values() if p.requires_grad]

    def _label_counts(self) -> np.ndarray:
        """How often each label occurs in the training set; a ValueError says why they cannot be counted."""
        num_labels = self.model.config.num_labels
        columns = getattr(self.train_dataset, "column_names", None) or []
        column = _label_column(columns)
        if column is None:
            raise ValueError(
                "FRSTrainingArguments.frs_balance_labels counts the training labels: it needs a train_dataset "
                f"(a datasets.Dataset) with a 'label' or 'labels' column, got columns {columns}."
            )
        labels = np.asarray(self.train_dataset[column])
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or num_labels < 2:
            raise ValueError(
                "FRSTrainingArguments.frs_balance_labels is for single-label classification: integer labels and "
                f"num_labels >= 2 (got labels of shape {labels.shape}, dtype {labels.dtype}; num_labels {num_labels})."
            )
        if len(labels) == 0 or labels.min() < 0 or labels.max() >= num_labels:
            raise ValueError(f"The training labels must lie in [0, {num_labels}) (the model's num_labels).")
        return np.bincount(labels, minlength=num_labels)

    def _balanced_label_weights(self) -> torch.Tensor:
        """Per-label loss weights ``N / (num_labels * count)`` of the training set (scikit-learn's "balanced")."""
        if self.args.label_smoothing_factor > 0 or self.compute_loss_func is not None:
            raise ValueError(
                "FRSTrainingArguments.frs_balance_labels replaces the model's cross-entropy: it cannot be combined "
                "with label_smoothing_factor or compute_loss_func."
            )
        counts = self._label_counts()
        # A label absent from the training set never meets its weight: 0 instead of infinity.
        weights = np.divide(counts.sum(), len(counts) * counts, out=np.zeros(len(counts)), where=counts > 0)
        return torch.tensor(weights, dtype=torch.float32)

    def _warn_if_labels_skewed(self) -> None:
        """At a certifying rate, skewed labels tilt the vote of copies that keep few words: say so, once."""
        if not self.args.frs_randomize or self.frs_config.omega_low <= 0.5:
            return
        try:
            counts = self._label_counts()
        except ValueError:
            return  # nothing to count (an iterable dataset, regression...): nothing to say
        present = counts[counts > 0]
        if len(present) >= 2 and present.max() >= SKEWED_LABELS * present.min():
            logger.warning(
                f"Training at deletion rate {self.frs_config.omega_low} on labels that are not balanced (counts "
                f"{counts.tolist()}): a copy that keeps few words votes by the label prior, so the smoothed "
                "classifier drifts to the most frequent label -- which data poisoning makes the attacker's target. "
                "frs_balance_labels=True weighs every label the same (docs/theory.md, 'Choosing omega_low')."
            )

    def _keep_reference_texts(self) -> None:
        """With fuzzing on and no references, keep ``frs_reference_texts`` texts of the eval set (else the training
        set) as the transplant test's references: without them the search's areas on clean texts' opinion words
        stay, and cost clean accuracy at every certification of the saved model (docs/fuzzing.md)."""
        count, config = self.args.frs_reference_texts, self.frs_config
        if not (count and config.fuzzing and config.fuzzing_config.reference_texts is None):
            return
        seed = derive_seed(self.args.seed, Stream.TRAIN_REFERENCES) % 2**32
        for name in ("eval_dataset", "train_dataset"):
            dataset = getattr(self, name)
            if not hasattr(dataset, "shuffle"):  # a dict of eval sets, an iterable dataset, none at all
                continue
            texts, _ = self._texts_and_labels(dataset.shuffle(seed=seed), limit=count)
            texts = [text for text in texts or () if text.strip()]
            if texts:
                self.frs_config = config.replace(fuzzing_config={"reference_texts": texts})
                logger.warning(
                    f"FRSTrainer keeps {len(texts)} texts of the {name.split('_')[0]} set as fuzzing reference_texts "
                    "(the transplant test's): they are saved in frs_config.json and named in the model card. "
                    "frs_reference_texts=0 keeps none."
                )
                return

    def _next_key(self) -> int:
        step, count = self._micro_step
        count = count + 1 if step == self.state.global_step else 0
        self._micro_step = (self.state.global_step, count)
        return derive_seed(self.state.global_step, count, self.args.process_index)

    # Training -------------------------------------------------------------------------------------------
    def train(self, *args: Any, **kwargs: Any):
        """``Trainer.train``, announcing the FRS settings in force first (one INFO line)."""
        a, c, noise = self.args, self.frs_config, self.frs_config.weight_noise_config
        settings = (
            f"randomized text: {a.frs_randomize} (deletion {c.omega_low} / {c.omega_high} in a random area "
            f"of up to {a.frs_random_area:g}, whole texts {a.frs_clean_fraction:g}, {a.frs_copies} copies per example, "
            f"balanced labels {a.frs_balance_labels}, "
            f"consistency {a.frs_consistency:g}); weight noise sigma {noise.sigma:g} on "
            f"{noise.modules or f'the top {noise.layers} layer(s)'}; update clip "
            f"{a.frs_update_clip:g}, noise {a.frs_update_noise:g}"
        )
        # Trainer's own logger: the line appears wherever "***** Running training *****" does.
        trainer_logger.info(f"FRS training: {settings}.")
        return super().train(*args, **kwargs)

    def training_step(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch=None) -> torch.Tensor:
        """Forward and backward under a fresh weight-noise draw; the exact weights are back before
        the optimizer sees the gradients."""
        key = self._next_key()
        if self.args.frs_randomize:
            inputs = self.randomize_batch(inputs, key)
        with self._weight_noise.apply(key):
            return super().training_step(model, inputs, num_items_in_batch)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # A per-batch mean for every model: heads that would normalize by num_items_in_batch (Llama's)
        # and heads that ignore it (BERT's) then agree, and the Trainer scales it for accumulation.
        labels = inputs.get("labels")
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=None)
        if self._label_weights is not None and model.training and labels is not None:
            logits = outputs.logits.float()
            weight = self._label_weights.to(logits.device)
            loss = nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), weight=weight)
        copies = self.args.frs_copies if model.training else 1
        if copies > 1 and self.args.frs_consistency > 0:
            log_p = outputs.logits.float().log_softmax(-1).view(copies, -1, outputs.logits.shape[-1])
            log_mean = log_p.logsumexp(0) - math.log(copies)  # log of the copies' average prediction
            kl = (log_mean.exp() * (log_mean - log_p)).sum(-1).mean()  # mean over copies and examples
            loss = loss + self.args.frs_consistency * kl
        return (loss, outputs) if return_outputs else loss

    def randomize_batch(self, inputs: dict[str, Any], key: int) -> dict[str, Any]:
        """``frs_copies`` deletion copies of every example of a collated batch (each left whole with
        probability ``frs_clean_fraction``), on the same word units as certification uses, copy-major
        (all first copies, then all second copies...); labels and any other per-example columns are
        repeated alongside."""
        input_ids, mask = inputs["input_ids"], inputs.get("attention_mask")
        rows = list(input_ids) if mask is None else [ids[m.bool()] for ids, m in zip(input_ids, mask, strict=True)]
        texts = self.processing_class.batch_decode(rows, skip_special_tokens=True)
        units = segment(self.processing_class, texts)
        rng = np.random.default_rng(derive_seed(self.args.seed, Stream.TRAIN_TEXT, key))
        sequences = []
        for copy_index in range(self.args.frs_copies):
            for i, unit in enumerate(units):
                if self.args.frs_clean_fraction > 0 and rng.random() < self.args.frs_clean_fraction:
                    sequences.append(rows[i].cpu().numpy())
                    continue
                area, longest = None, math.floor(self.args.frs_random_area * unit.num_units)
                if longest >= 1:
                    length = int(rng.integers(1, longest + 1))
                    start = int(rng.integers(0, unit.num_units - length + 1))
                    area = [(start, start + length)]
                rates = unit_rates(unit.num_units, area, self.frs_config.omega_low, self.frs_config.omega_high)
                copy = randomize(
                    unit,
                    rates,
                    1,
                    seed=self.args.seed,
                    index=derive_seed(Stream.TRAIN_TEXT, key, i, *([copy_index] if copy_index else [])),
                    max_length=input_ids.shape[1],
                    deduplicate=False,
                )
                sequences.append(copy.sequences[0])
        batch = collate(sequences, self.processing_class.pad_token_id)
        out = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "token_type_ids")}
        if self.args.frs_copies > 1:  # every per-example column follows its copies
            out = {
                k: v.repeat(self.args.frs_copies, *[1] * (v.dim() - 1))
                if isinstance(v, torch.Tensor) and v.dim() > 0 and len(v) == len(rows)
                else v
                for k, v in out.items()
            }
        out["input_ids"] = batch["input_ids"].to(input_ids.device)
        out["attention_mask"] = batch["attention_mask"].to(input_ids.device)
        return out

    # Evaluation --------------------------------------------------------------------------------------------
    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None, **kwargs):
        """The plain loop, plus the smoothed metrics of :meth:`smoothed_metrics` when evaluating: inside the
        evaluation's runtime, its log line and what callbacks (early stopping, best model) see."""
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, **kwargs)
        if description == "Evaluation" and self.args.frs_eval_n > 0:
            prefix = kwargs.get("metric_key_prefix", "eval")
            output.metrics.update(self.smoothed_metrics(dataloader.dataset, prefix))
        return output

    def smoothed_metrics(self, dataset, metric_key_prefix: str = "eval") -> dict[str, float]:
        """The smoothed classifier on up to ``frs_eval_max_examples`` examples with ``frs_eval_n`` copies each.

        ``{prefix}_smoothed_accuracy``: the majority vote; ``{prefix}_smoothed_abstain``: the share of examples
        not certified; ``{prefix}_certified_accuracy_r{r}`` (r = 0, 1, 2): correct and certified at radius r.
        These are real certificates (one look, alpha of the inference config), loose at so few copies: they
        track training; the numbers to quote come from ``certify_dataset`` at full ``n``.
        """
        texts, labels = self._texts_and_labels(dataset, self.args.frs_eval_max_examples)
        if texts is None or labels is None:
            return {}  # e.g. a dict of eval sets (evaluated one by one) or an iterable dataset
        n = self.args.frs_eval_n
        with _progress_bars(not self.args.disable_tqdm):
            results = self.smoothed_model().certify(texts, n=n, sequential=True, sequential_first=n)
        votes = [int(np.argmax(r.counts)) for r in results]
        answers, radii = [r.label for r in results], [r.radius for r in results]
        metrics = {
            f"{metric_key_prefix}_smoothed_accuracy": certified_accuracy(labels, votes, [0] * len(votes), 0),
            f"{metric_key_prefix}_smoothed_abstain": abstention_rate(answers),
        }
        for r in (0, 1, 2):
            metrics[f"{metric_key_prefix}_certified_accuracy_r{r}"] = certified_accuracy(labels, answers, radii, r)
        return metrics

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test", smoothed: bool = False):
        """``Trainer.predict``; with ``smoothed=True``, the smoothed classifier's instead of the plain model's.

        Smoothed ``predictions`` are vote shares ``[num_examples, num_labels]`` over the inference config's ``n``
        copies (with its weight noise), and ``metrics`` hold ``{prefix}_smoothed_accuracy`` and
        ``{prefix}_smoothed_abstain`` (Cohen et al.'s PREDICT at the config's alpha) when the set has labels.
        """
        if not smoothed:
            return super().predict(test_dataset, ignore_keys, metric_key_prefix)
        from transformers.trainer_utils import PredictionOutput, speed_metrics

        start = time.time()
        texts, labels = self._texts_and_labels(test_dataset)
        if texts is None:
            raise ValueError("FRSTrainer.predict(smoothed=True) needs a tokenized datasets.Dataset with input_ids.")
        with _progress_bars(not self.args.disable_tqdm):
            results = self.smoothed_model().predict(texts)
        shares = np.array([np.asarray(r.counts) / sum(r.counts) for r in results])
        answers = [r.label for r in results]
        metrics = {f"{metric_key_prefix}_smoothed_abstain": abstention_rate(answers)}
        if labels is not None:  # an abstention counts as wrong
            accuracy = certified_accuracy(labels, answers, [0] * len(answers), 0)
            metrics[f"{metric_key_prefix}_smoothed_accuracy"] = accuracy
        metrics.update(speed_metrics(metric_key_prefix, start, num_samples=len(texts)))
        self.log(metrics)
        return PredictionOutput(predictions=shares, label_ids=labels, metrics=metrics)

    def _texts_and_labels(self, dataset, limit: int | None = None) -> tuple[list[str] | None, np.ndarray | None]:
        """The texts (decoded from ``input_ids``) and labels of a tokenized dataset; None where it has none."""
        columns = getattr(dataset, "column_names", None) or []
        if "input_ids" not in columns or self.processing_class is None:
            return None, None
        if limit is not None:
            dataset = dataset.select(range(min(len(dataset), limit)))
        texts = self.processing_class.batch_decode(list(dataset["input_ids"]), skip_special_tokens=True)
        label = _label_column(columns)
        return texts, None if label is None else np.asarray(list(dataset[label]))

    # Saving -------------------------------------------------------------------------------------------------
    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Also writes ``frs_config.json``, so every checkpoint carries the smoothing it was trained for."""
        super().save_model(output_dir, _internal_call)
        if self.args.should_save:
            self.frs_config.save_pretrained(output_dir or self.args.output_dir)

    def create_model_card(self, model_name: str | None = None, tags: str | list[str] | None = None, **kwargs) -> None:
        """The FRS model card (settings, what the certificate says, results) instead of the Trainer's generic one,
        so that ``trainer.push_to_hub()`` publishes what ``SmoothedModelForSequenceClassification.push_to_hub``
        does. The Trainer's other card arguments (language, datasets...) are not used."""
        if not self.is_world_process_zero():
            return
        from .hub import model_card

        smoothed = self.smoothed_model()
        card = model_card(
            smoothed,
            smoothed.certification_results,
            repo_id=self.hub_model_id,
            tags=[tags] if isinstance(tags, str) else tags,
        )
        card.save(os.path.join(self.args.output_dir, "README.md"))

    def smoothed_model(self):
        """The model being trained, wrapped for certification with the training's FRS settings."""
        from .modeling import SmoothedModelForSequenceClassification

        return SmoothedModelForSequenceClassification.from_model(
            self.accelerator.unwrap_model(self.model), self.processing_class, self.frs_config
        )

    def save_smoothed_model(self, output_dir: str | os.PathLike) -> None:
        """A directory that ``SmoothedModelForSequenceClassification.from_pretrained`` (and the
        pipeline) load with the training's settings: the model (or the PEFT adapter), the tokenizer
        and ``frs_config.json``."""
        self.save_model(str(output_dir))
        if not self.args.should_save:
            return
        if self.processing_class is not None:
            self.processing_class.save_pretrained(str(output_dir))
        model = self.accelerator.unwrap_model(self.model)
        if hasattr(model, "peft_config"):  # an adapter folder has no config.json: keep the labels
            model.config.save_pretrained(str(output_dir))
