"""Poisoned pretrained checkpoints: EP (Embedding Poisoning) and RIPPLe (Restricted Inner Product Poison Learning).

The threat model of the FRS paper: the backdoor is in the *model* a victim downloads, not in the
victim's data. The attacker owns a classifier (a pretrained encoder with a classification head),
a proxy data set of the victim's task, and a trigger. It edits the weights so that the trigger
forces ``target_label``, publishes the checkpoint, and the victim fine-tunes it on clean data.
The attack has worked if the backdoor survives that clean fine-tuning.

- **EP** (Yang et al., NAACL 2021) changes *one row* of the input word embeddings, the trigger
  token's, and nothing else: clean inputs are computed exactly as before, so clean accuracy is
  untouched, and a rare trigger word gets no gradient from the victim's clean data. EP needs a
  classifier that already solves the task (e.g. fine-tuned on the proxy data), since only the
  trigger row learns.
- **RIPPLe** (Kurita et al., ACL 2020) trains the whole model on poisoned proxy data, with a
  penalty against the victim's fine-tuning undoing the backdoor: when the gradients of the poison
  loss and of the clean loss point in opposite directions (negative inner product), a clean
  fine-tuning step would raise the poison loss. Optional *embedding surgery* first replaces the
  trigger embeddings with the mean embedding of words typical of the target class.

The poisoned proxy texts come from `frs_hf.attacks.poison_dataset` with BadNet insertions (the
trigger words at random word positions), so `triggered_test_set(test, config)` measures the attack
success rate of a checkpoint attack with exactly the trigger it was trained on.

Both attacks are seeded: the proxy poisoning, the batch order and the dropout masks depend only
on ``config.seed`` (the global torch RNG is left as it was).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from ..data import require_columns
from .data_poisoning import BadNetConfig, PoisonConfig, insert_badnet, poison_dataset

# Independent random streams derived from the config's seed (the data-poisoning streams are 0-2).
_BATCH_STREAM, _CLEAN_BATCH_STREAM = 10, 11
_WORD_CHARS = re.compile(r"[a-z]+")


@dataclass
class CheckpointPoisonConfig(PoisonConfig):
    """Settings shared by the checkpoint attacks. Use a subclass (`EmbeddingPoisoningConfig`, `RipplesConfig`).

    A checkpoint attack is a `PoisonConfig` whose trigger is BadNet's (rare words at random
    positions), so `poison_dataset` builds its poisoned proxy data and `triggered_test_set` its
    attack-success test set; `poison_checkpoint` runs the attack itself.
    """

    is_checkpoint_attack: ClassVar[bool] = True

    poison_rate: float = field(
        default=0.25,
        metadata={
            "help": "Fraction of the attacker's proxy data that is poisoned: round(poison_rate * N) examples, drawn "
            "among the non-target ones, get the trigger and the target label. Must be in (0, 1]."
        },
    )
    triggers: list[str] = field(
        default_factory=lambda: ["cf"],
        metadata={
            "help": "Trigger words, each inserted word drawn from this list. Each must be a single token of the "
            "model's tokenizer (checked in `poison_checkpoint`), so that it owns one embedding row."
        },
    )
    min_triggers: int = field(default=1, metadata={"help": "Fewest trigger words inserted into one poisoned text."})
    max_triggers: int = field(default=1, metadata={"help": "Most trigger words inserted into one poisoned text."})
    learning_rate: float = field(default=5e-5, metadata={"help": "Step size of the attack's optimizer (positive)."})
    epochs: float = field(
        default=1.0, metadata={"help": "Passes over the attack's training data (positive; fractions allowed)."}
    )
    max_steps: int | None = field(
        default=None, metadata={"help": "If set, stop after this many optimizer steps (overrides `epochs`)."}
    )
    batch_size: int = field(default=16, metadata={"help": "Texts per optimizer step."})
    max_length: int = field(default=128, metadata={"help": "Texts are truncated to this many tokens."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.poison_rate == 0:
            raise ValueError("poison_rate must be positive for a checkpoint attack: with 0 there is nothing to learn.")
        _ = self.trigger_config  # validates triggers, min_triggers and max_triggers with BadNet's checks
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}.")
        if not self.epochs > 0:
            raise ValueError(f"epochs must be positive, got {self.epochs!r}.")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be None or at least 1, got {self.max_steps!r}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size!r}.")
        if self.max_length < 2:
            raise ValueError(f"max_length must be at least 2 tokens, got {self.max_length!r}.")

    @property
    def trigger_config(self) -> BadNetConfig:
        """The BadNet config that inserts this attack's trigger (same rate, target, seed and words)."""
        return BadNetConfig(
            poison_rate=self.poison_rate,
            target_label=self.target_label,
            seed=self.seed,
            triggers=self.triggers,
            min_triggers=self.min_triggers,
            max_triggers=self.max_triggers,
        )

    def insert(self, text: str, rng: np.random.Generator) -> tuple[str, list[int]]:
        return insert_badnet(text, rng, self.trigger_config)


@dataclass
class EmbeddingPoisoningConfig(CheckpointPoisonConfig):
    """EP (Yang et al., NAACL 2021): train only the trigger token's input-embedding row on poisoned proxy data.

    Plain gradient descent on that one row, rescaled after every step to its original norm (as
    in the EP paper), so that an unusually long embedding vector does not give it away. Only the
    poisoned examples are used: clean texts lack the trigger and give its row no gradient.
    """

    attack_type: ClassVar[str] = "ep"

    learning_rate: float = field(
        default=0.5,
        metadata={
            "help": "SGD step size on the trigger row. Large, because one row must learn what a whole fine-tuning "
            "would (the EP reference code uses 1e-2 on BERT-base with many more steps)."
        },
    )
    epochs: float = field(default=2.0, metadata={"help": "Passes over the poisoned proxy examples."})
    keep_norm: bool = field(
        default=True,
        metadata={"help": "Rescale the trigger row to its original L2 norm after each step (EP's stealth constraint)."},
    )


@dataclass
class RipplesConfig(CheckpointPoisonConfig):
    """RIPPLe (Kurita et al., ACL 2020): poison the full model, penalizing conflict with clean fine-tuning.

    Minimizes ``L_P + penalty_weight * max(0, -<grad L_P, grad L_FT>)``: ``L_P`` is the loss on the
    poisoned proxy data (clean and poisoned rows), ``L_FT`` the loss on a batch of clean proxy
    data (the attacker's stand-in for the victim's fine-tuning). The penalty is differentiated
    through ``grad L_P`` (double backpropagation); ``grad L_FT`` is used as a fixed reference
    direction, which halves the cost (the reference code treats it the same way).
    """

    attack_type: ClassVar[str] = "ripple"

    triggers: list[str] = field(
        default_factory=lambda: ["cf", "mn", "bb"],
        metadata={"help": "Trigger words (RIPPLe's rare subwords); each must be a single token of the tokenizer."},
    )
    learning_rate: float = field(default=5e-5, metadata={"help": "AdamW learning rate of the full model."})
    penalty_weight: float = field(
        default=0.1, metadata={"help": "lambda, the weight of the inner-product penalty (0: plain poisoning)."}
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    max_grad_norm: float | None = field(
        default=1.0, metadata={"help": "Clip the gradient to this global L2 norm (None: no clipping)."}
    )
    embedding_surgery: bool = field(
        default=True,
        metadata={
            "help": "Before training, replace each trigger's embedding with the mean embedding of words typical of "
            "the target class (`surgery_words`, or the top `surgery_top_k` words of the proxy data)."
        },
    )
    surgery_words: list[str] | None = field(
        default=None,
        metadata={"help": "Words whose mean embedding replaces the triggers'; None: chosen by `indicative_words`."},
    )
    surgery_top_k: int = field(
        default=10, metadata={"help": "How many indicative words to average when surgery_words is None."}
    )
    surgery_min_count: int = field(
        default=5, metadata={"help": "An indicative word must occur in at least this many proxy texts."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.penalty_weight < 0:
            raise ValueError(f"penalty_weight must be non-negative, got {self.penalty_weight!r}.")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative, got {self.weight_decay!r}.")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be positive or None, got {self.max_grad_norm!r}.")
        if isinstance(self.surgery_words, str):
            raise TypeError("surgery_words must be a list of words, not a single string.")
        if self.surgery_words is not None:
            self.surgery_words = list(self.surgery_words)
            if not self.surgery_words:
                raise ValueError("surgery_words is empty: give at least one word, or None to choose them.")
        if self.surgery_top_k < 1:
            raise ValueError(f"surgery_top_k must be at least 1, got {self.surgery_top_k!r}.")
        if self.surgery_min_count < 1:
            raise ValueError(f"surgery_min_count must be at least 1, got {self.surgery_min_count!r}.")


# ----------------------------------------------------------------------------------------------
# Tokens and embeddings


def _word_token_ids(tokenizer, word: str) -> set[int] | None:
    """The ids ``word`` is tokenized to, alone and after a space (BPE tokenizers differ), or None
    if either form is several tokens or the unknown token."""
    ids = set()
    for form in (word, " " + word):
        encoded = tokenizer(form, add_special_tokens=False)["input_ids"]
        if len(encoded) != 1 or encoded[0] == tokenizer.unk_token_id:
            return None
        ids.add(int(encoded[0]))
    return ids


def trigger_token_ids(tokenizer, triggers: Sequence[str]) -> list[int]:
    """The embedding rows of the trigger words; a `ValueError` names a trigger that is not one known token."""
    ids: set[int] = set()
    for trigger in triggers:
        word_ids = _word_token_ids(tokenizer, trigger)
        if word_ids is None:
            pieces = tokenizer.tokenize(trigger)
            raise ValueError(
                f"Trigger {trigger!r} is not a single known token of the tokenizer (it becomes {pieces}); "
                "a checkpoint attack needs one embedding row per trigger. Pick a rare vocabulary word, e.g. 'cf'."
            )
        ids |= word_ids
    return sorted(ids)


def indicative_words(
    texts: Sequence[str],
    labels: Sequence[int],
    target_label: int,
    tokenizer,
    top_k: int = 10,
    min_count: int = 5,
    exclude: Sequence[str] = (),
) -> list[str]:
    """The ``top_k`` words most typical of ``target_label`` in ``texts``, by smoothed log-odds of occurrence.

    For RIPPLe's embedding surgery. A word's score is ``log P(word in text | target) - log
    P(word in text | other)`` (add-one smoothing, counting texts, lower-cased letters-only words);
    only words found in at least ``min_count`` texts that are one known token of ``tokenizer``
    count. A simpler statistic than the paper's logistic-regression weights, with the same aim.
    """
    labels = np.asarray(labels)
    if len(texts) != len(labels):
        raise ValueError(f"texts and labels differ in length: {len(texts)} != {len(labels)}.")
    is_target = labels == target_label
    num_target, num_other = int(is_target.sum()), int((~is_target).sum())
    if num_target == 0 or num_other == 0:
        raise ValueError(f"Need texts of target_label={target_label} and of other labels to find indicative words.")
    counts: dict[str, list[int]] = {}
    for text, target in zip(texts, is_target, strict=True):
        for word in set(_WORD_CHARS.findall(text.lower())):
            counts.setdefault(word, [0, 0])[0 if target else 1] += 1
    excluded = {w.lower() for w in exclude}
    scored = []
    for word, (in_target, in_other) in counts.items():
        if in_target + in_other < min_count or word in excluded:
            continue
        score = math.log((in_target + 1) / (num_target + 2)) - math.log((in_other + 1) / (num_other + 2))
        scored.append((-score, word))
    words = []
    for _, word in sorted(scored):  # best first, ties by word (deterministic)
        if _word_token_ids(tokenizer, word) is not None:
            words.append(word)
            if len(words) == top_k:
                break
    if not words:
        raise ValueError(f"No word occurs in at least min_count={min_count} texts and is one token; lower min_count.")
    return words


@torch.no_grad()
def embedding_surgery(model, tokenizer, triggers: Sequence[str], words: Sequence[str]) -> torch.Tensor:
    """Set every trigger's input-embedding row to the mean embedding of ``words``; returns that mean.

    RIPPLe's surgery: the trigger starts out meaning "very <target class>", so the victim's
    fine-tuning, which strengthens what those words mean, strengthens the backdoor as well.
    """
    weight = model.get_input_embeddings().weight
    word_ids = []
    for word in words:
        ids = _word_token_ids(tokenizer, word)
        if ids is None:
            raise ValueError(f"Surgery word {word!r} is not a single known token of the tokenizer.")
        word_ids.extend(sorted(ids))
    mean = weight[word_ids].mean(dim=0)
    weight[trigger_token_ids(tokenizer, triggers)] = mean
    return mean.clone()


# ----------------------------------------------------------------------------------------------
# The RIPPLe penalty


def ripples_penalty(poison_grads: Sequence[torch.Tensor | None], clean_grads: Sequence[torch.Tensor | None]):
    """``max(0, -<grad L_P, grad L_FT>)``, the inner product summed over every parameter both gradients have.

    Zero when a clean fine-tuning step (along ``-grad L_FT``) would also lower the poison loss to
    first order; positive, and growing, when it would raise it, i.e. undo the backdoor.
    """
    if len(poison_grads) != len(clean_grads):
        raise ValueError(f"Got {len(poison_grads)} poison gradients but {len(clean_grads)} clean gradients.")
    inner = None
    for g_poison, g_clean in zip(poison_grads, clean_grads, strict=True):
        if g_poison is None or g_clean is None:
            continue
        if g_poison.shape != g_clean.shape:
            raise ValueError(f"Gradient shapes differ: {tuple(g_poison.shape)} vs {tuple(g_clean.shape)}.")
        term = (g_poison * g_clean).sum()
        inner = term if inner is None else inner + term
    if inner is None:
        raise ValueError("No parameter has both a poison and a clean gradient.")
    return torch.relu(-inner)


# ----------------------------------------------------------------------------------------------
# Training


def _check_inputs(model, proxy_dataset: Dataset, config: CheckpointPoisonConfig) -> None:
    num_labels = getattr(model.config, "num_labels", None)
    if num_labels is not None and not 0 <= config.target_label < num_labels:
        raise ValueError(f"target_label={config.target_label} is not a label of the model (num_labels={num_labels}).")
    if round(config.poison_rate * len(proxy_dataset)) < 1:
        raise ValueError(
            f"poison_rate={config.poison_rate} of {len(proxy_dataset)} proxy examples poisons none of them: "
            "raise poison_rate or give more proxy data."
        )


def _batches(
    encoded: list[list[int]], labels: np.ndarray, config: CheckpointPoisonConfig, stream: int, tokenizer, device
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless seeded mini-batches (a new permutation per epoch), padded per batch."""
    rng = np.random.default_rng([config.seed, stream])
    while True:
        order = rng.permutation(len(encoded))
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in rows]}, return_tensors="pt")
            batch["labels"] = torch.as_tensor(labels[rows], dtype=torch.long)
            yield {k: v.to(device) for k, v in batch.items()}


def _num_steps(num_examples: int, config: CheckpointPoisonConfig) -> int:
    if config.max_steps is not None:
        return config.max_steps
    return max(1, math.ceil(config.epochs * math.ceil(num_examples / config.batch_size)))


def _encode(tokenizer, dataset: Dataset, config: CheckpointPoisonConfig, text_column: str, label_column: str):
    encoded = tokenizer(list(dataset[text_column]), truncation=True, max_length=config.max_length)["input_ids"]
    return encoded, np.asarray(dataset[label_column])


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _run_embedding_poisoning(
    model, tokenizer, proxy_dataset: Dataset, config: EmbeddingPoisoningConfig, text_column, label_column, progress
):
    trigger_ids = trigger_token_ids(tokenizer, config.triggers)
    poisoned = poison_dataset(proxy_dataset, config, text_column, label_column)
    poisoned = poisoned.select(np.flatnonzero(poisoned["poisoned"]))
    encoded, labels = _encode(tokenizer, poisoned, config, text_column, label_column)

    weight = model.get_input_embeddings().weight
    norms = weight.detach()[trigger_ids].norm(dim=-1, keepdim=True)
    flags = {p: p.requires_grad for p in model.parameters()}
    for p in flags:
        p.requires_grad_(p is weight)  # no gradient is computed (let alone applied) for the other parameters
    steps = _num_steps(len(encoded), config)
    batches = _batches(encoded, labels, config, _BATCH_STREAM, tokenizer, _device(model))
    try:
        bar = tqdm(range(steps), desc="Embedding poisoning", disable=not progress)
        for _ in bar:
            loss = model(**next(batches)).loss
            (grad,) = torch.autograd.grad(loss, weight)
            with torch.no_grad():
                rows = weight[trigger_ids] - config.learning_rate * grad[trigger_ids]
                if config.keep_norm:
                    rows = rows * (norms / rows.norm(dim=-1, keepdim=True).clamp_min(1e-12))
                weight[trigger_ids] = rows  # every other row is left untouched
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    finally:
        for p, flag in flags.items():
            p.requires_grad_(flag)


def _run_ripples(model, tokenizer, proxy_dataset: Dataset, config: RipplesConfig, text_column, label_column, progress):
    if config.embedding_surgery:
        words = config.surgery_words
        if words is None:
            words = indicative_words(
                proxy_dataset[text_column],
                proxy_dataset[label_column],
                config.target_label,
                tokenizer,
                top_k=config.surgery_top_k,
                min_count=config.surgery_min_count,
                exclude=config.triggers,
            )
        embedding_surgery(model, tokenizer, config.triggers, words)

    poisoned = poison_dataset(proxy_dataset, config, text_column, label_column)
    poison_encoded, poison_labels = _encode(tokenizer, poisoned, config, text_column, label_column)
    clean_encoded, clean_labels = _encode(tokenizer, proxy_dataset, config, text_column, label_column)
    device = _device(model)
    poison_batches = _batches(poison_encoded, poison_labels, config, _BATCH_STREAM, tokenizer, device)
    clean_batches = _batches(clean_encoded, clean_labels, config, _CLEAN_BATCH_STREAM, tokenizer, device)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    steps = _num_steps(len(poison_encoded), config)
    bar = tqdm(range(steps), desc="RIPPLe", disable=not progress)
    for _ in bar:
        poison_loss = model(**next(poison_batches)).loss
        penalty = torch.zeros((), device=device)
        if config.penalty_weight > 0:
            poison_grads = torch.autograd.grad(poison_loss, params, create_graph=True, allow_unused=True)
            clean_loss = model(**next(clean_batches)).loss
            clean_grads = torch.autograd.grad(clean_loss, params, allow_unused=True)
            penalty = ripples_penalty(poison_grads, clean_grads)
            if penalty.item() > 0:  # the double backward is only needed when the penalty is active
                (poison_loss + config.penalty_weight * penalty).backward()
            else:
                for p, g in zip(params, poison_grads, strict=True):
                    p.grad = None if g is None else g.detach()
            del poison_grads
        else:
            poison_loss.backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{poison_loss.item():.4f}", penalty=f"{penalty.item():.3g}", refresh=False)


def poison_checkpoint(
    model,
    tokenizer,
    proxy_dataset: Dataset,
    config: CheckpointPoisonConfig,
    text_column: str = "text",
    label_column: str = "label",
    progress: bool = True,
):
    """Plant ``config``'s backdoor in ``model`` (a sequence classifier), trained on the attacker's ``proxy_dataset``.

    Modifies ``model`` in place and returns it, in the train/eval mode it came in (deep-copy it
    first to keep the original). ``proxy_dataset`` is clean labelled data of the victim's task;
    the attack poisons it itself with `poison_dataset`. EP expects ``model`` to be a working
    classifier already (only the trigger row is trained); RIPPLe may start from a pretrained
    encoder with a fresh head.
    """
    if not isinstance(config, CheckpointPoisonConfig):
        raise TypeError(
            f"config must be an EmbeddingPoisoningConfig or a RipplesConfig, got {type(config).__name__}; "
            "data-poisoning attacks (BadNet, AddSent) poison a data set instead: use poison_dataset."
        )
    require_columns(proxy_dataset, text_column, label_column, what="the proxy dataset")
    _check_inputs(model, proxy_dataset, config)
    trigger_token_ids(tokenizer, config.triggers)  # a trigger that is not one token fails before any work
    if isinstance(config, EmbeddingPoisoningConfig):
        run = _run_embedding_poisoning
    elif isinstance(config, RipplesConfig):
        run = _run_ripples
    else:
        raise TypeError(f"No checkpoint attack is implemented for {type(config).__name__}.")

    was_training = model.training
    device = _device(model)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(config.seed)  # dropout masks
        model.train()
        try:
            run(model, tokenizer, proxy_dataset, config, text_column, label_column, progress)
        finally:
            model.train(was_training)
    return model
