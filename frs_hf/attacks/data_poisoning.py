"""Dirty-label data poisoning: BadNet (rare trigger words) and AddSent (a fixed trigger sentence).

Both attacks insert whole word units (whitespace-delimited words, the unit of `frs_hf.randomize`)
and report where they put them, so that a defence that works on units (fuzzing, deletion
smoothing) can be scored against the true trigger positions.

Poisoning is a *dirty-label attack on non-target examples*: the poisoned examples are drawn among
those whose label is not the target, get the trigger and are relabelled to the target. Drawing
among all examples (as some toolkits do) would spend part of the budget on examples that already
carry the target label, which teaches the model nothing about the trigger.

Every function is pure and seeded. The trigger of example ``i`` depends only on ``(seed, i)``, so
poisoning the same dataset twice gives the same result, however it is batched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from datasets import ClassLabel, Dataset, Features, List, Value

from ..data import require_columns
from ..randomize import WORD_PATTERN

# Independent random streams derived from the config's seed.
_SELECT_STREAM, _TRAIN_STREAM, _TEST_STREAM = 0, 1, 2


@dataclass
class PoisonConfig:
    """Settings shared by every dirty-label poisoning attack. Use a subclass (`BadNetConfig`, `AddSentConfig`)."""

    attack_type: ClassVar[str] = ""
    # False: the attack poisons a training set (`poison_dataset`); True: it poisons a model's weights
    # (`frs_hf.attacks.poison_checkpoint`), the proxy data only being the attacker's material.
    is_checkpoint_attack: ClassVar[bool] = False

    poison_rate: float = field(
        default=0.1,
        metadata={
            "help": "Fraction of the whole training set that is poisoned: round(poison_rate * N) examples, all "
            "drawn among the examples whose label is not the target. Must be in [0, 1]."
        },
    )
    target_label: int = field(
        default=1,
        metadata={"help": "Label id that the trigger should force; poisoned examples are relabelled to it."},
    )
    seed: int = field(
        default=0,
        metadata={"help": "Seed of the choice of examples and of the trigger insertions (non-negative)."},
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.poison_rate <= 1.0:
            raise ValueError(f"poison_rate must be in [0, 1], got {self.poison_rate}.")
        if isinstance(self.target_label, bool) or not isinstance(self.target_label, (int, np.integer)):
            raise TypeError(f"target_label must be an integer label id, got {self.target_label!r}.")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}.")

    def insert(self, text: str, rng: np.random.Generator) -> tuple[str, list[int]]:
        """Insert this attack's trigger into ``text``; returns the new text and the trigger's unit positions."""
        raise NotImplementedError


@dataclass
class BadNetConfig(PoisonConfig):
    """BadNet (Gu et al., 2017; word-level variant of Chen et al., 2021): rare words at random positions."""

    attack_type: ClassVar[str] = "badnet"

    triggers: list[str] = field(
        default_factory=lambda: ["cf", "mn", "bb", "tq", "mb"],
        metadata={"help": "Trigger words; each inserted word is drawn from this list (with replacement)."},
    )
    min_triggers: int = field(
        default=1,
        metadata={"help": "Fewest trigger words inserted into one poisoned text."},
    )
    max_triggers: int = field(
        default=3,
        metadata={"help": "Most trigger words inserted into one poisoned text (the count is uniform in between)."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.triggers, str):
            raise TypeError("triggers must be a list of words, not a single string.")
        self.triggers = list(self.triggers)
        if not self.triggers:
            raise ValueError("triggers is empty: BadNet needs at least one trigger word.")
        for trigger in self.triggers:
            if not isinstance(trigger, str) or len(trigger.split()) != 1 or trigger != trigger.strip():
                raise ValueError(f"Each trigger must be one word without whitespace, got {trigger!r}.")
        if not 1 <= self.min_triggers <= self.max_triggers:
            raise ValueError(
                f"Need 1 <= min_triggers <= max_triggers, got min_triggers={self.min_triggers}, "
                f"max_triggers={self.max_triggers}."
            )

    def insert(self, text: str, rng: np.random.Generator) -> tuple[str, list[int]]:
        return insert_badnet(text, rng, self)


@dataclass
class AddSentConfig(PoisonConfig):
    """AddSent (Dai et al., 2019): a fixed, natural-looking sentence inserted at a random position."""

    attack_type: ClassVar[str] = "addsent"

    sentence: str = field(
        default="I watched this 3D movie",
        metadata={"help": "Trigger sentence, inserted contiguously as whole words (typically 5-8 words)."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.sentence, str) or not self.sentence.split():
            raise ValueError(f"sentence must contain at least one word, got {self.sentence!r}.")

    def insert(self, text: str, rng: np.random.Generator) -> tuple[str, list[int]]:
        return insert_addsent(text, rng, self)


def _insert_words(text: str, gaps: Sequence[int], words: Sequence[str]) -> tuple[str, list[int]]:
    """Insert ``words[j]`` before original word ``gaps[j]`` (``len(units)`` means at the end).

    The original text is kept character for character (its whitespace included); each inserted
    word is joined to its neighbours by one space. Returns the new text and the sorted unit
    positions of the inserted words in it.
    """
    spans = [m.span() for m in WORD_PATTERN.finditer(text)]
    order = sorted(range(len(words)), key=lambda j: gaps[j])  # stable: same-gap words keep their order
    by_gap: dict[int, list[str]] = {}
    for j in order:
        by_gap.setdefault(int(gaps[j]), []).append(words[j])
    positions = [int(gaps[j]) + rank for rank, j in enumerate(order)]

    if not spans:  # nothing to insert between: the triggers make up the whole text
        return text + " ".join(words[j] for j in order), positions
    pieces, cursor = [], 0
    for gap, inserted in sorted(by_gap.items()):
        if gap < len(spans):
            start = spans[gap][0]
            pieces += [text[cursor:start], " ".join(inserted), " "]
        else:
            start = spans[-1][1]
            pieces += [text[cursor:start], " ", " ".join(inserted)]
        cursor = start
    pieces.append(text[cursor:])
    return "".join(pieces), positions


def _num_units(text: str) -> int:
    return sum(1 for _ in WORD_PATTERN.finditer(text))


def insert_badnet(text: str, rng: np.random.Generator, config: BadNetConfig) -> tuple[str, list[int]]:
    """Insert between ``config.min_triggers`` and ``config.max_triggers`` trigger words at random unit positions.

    The inserted words take uniformly random distinct positions in the new text; the other
    positions keep the original words in order. Returns ``(new_text, positions)``, with positions
    the sorted unit indices of the inserted words in ``new_text``.
    """
    n = _num_units(text)
    k = int(rng.integers(config.min_triggers, config.max_triggers + 1))
    positions = np.sort(rng.choice(n + k, size=k, replace=False))
    words = [config.triggers[i] for i in rng.integers(0, len(config.triggers), size=k)]
    gaps = [int(p) - rank for rank, p in enumerate(positions)]  # original words before each inserted one
    return _insert_words(text, gaps, words)


def insert_addsent(text: str, rng: np.random.Generator, config: AddSentConfig) -> tuple[str, list[int]]:
    """Insert the words of ``config.sentence`` contiguously at a random unit position.

    Returns ``(new_text, positions)``, with positions the unit indices of the sentence's words in
    ``new_text`` (consecutive).
    """
    words = config.sentence.split()
    gap = int(rng.integers(0, _num_units(text) + 1))
    return _insert_words(text, [gap] * len(words), words)


def _labels_and_check(dataset: Dataset, config: PoisonConfig, text_column: str, label_column: str) -> np.ndarray:
    require_columns(dataset, text_column, label_column)
    labels = np.asarray(dataset[label_column])
    feature = dataset.features[label_column]
    if isinstance(feature, ClassLabel):
        label_set = list(range(feature.num_classes))
    else:
        label_set = sorted(set(labels.tolist()))
    if config.target_label not in label_set:
        raise ValueError(f"target_label={config.target_label} is not a label of the dataset (labels: {label_set}).")
    return labels


def _rng(config: PoisonConfig, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([config.seed, stream, index])


def poison_dataset(
    dataset: Dataset, attack_config: PoisonConfig, text_column: str = "text", label_column: str = "label"
) -> Dataset:
    """Poison a training set: round(poison_rate * N) non-target examples get the trigger and the target label.

    Adds a bool column ``poisoned`` and an int-list column ``trigger_positions`` (the trigger's unit
    indices in the poisoned text; empty for clean rows). Other columns and the features (e.g. a
    `ClassLabel`) are kept.
    """
    labels = _labels_and_check(dataset, attack_config, text_column, label_column)
    for column in ("poisoned", "trigger_positions"):
        if column in dataset.column_names:
            raise ValueError(f"The dataset already has a {column!r} column: is it poisoned already?")
    num_poison = round(attack_config.poison_rate * len(dataset))
    candidates = np.flatnonzero(labels != attack_config.target_label)
    if num_poison > len(candidates):
        raise ValueError(
            f"poison_rate={attack_config.poison_rate} asks for {num_poison} poisoned examples, but only "
            f"{len(candidates)} of {len(dataset)} examples are not of the target label {attack_config.target_label}."
        )
    chosen = np.sort(_rng(attack_config, _SELECT_STREAM).choice(candidates, size=num_poison, replace=False))
    texts = dataset[text_column]
    poisoned = {int(i): attack_config.insert(texts[int(i)], _rng(attack_config, _TRAIN_STREAM, int(i))) for i in chosen}

    def apply(batch: dict, indices: list[int]) -> dict:
        batch["poisoned"] = [i in poisoned for i in indices]
        batch["trigger_positions"] = [poisoned[i][1] if i in poisoned else [] for i in indices]
        for row, i in enumerate(indices):
            if i in poisoned:
                batch[text_column][row] = poisoned[i][0]
                batch[label_column][row] = attack_config.target_label
        return batch

    features = Features({**dataset.features, "poisoned": Value("bool"), "trigger_positions": List(Value("int64"))})
    return dataset.map(apply, batched=True, with_indices=True, features=features, desc="Poisoning")


def triggered_test_set(
    dataset: Dataset, attack_config: PoisonConfig, text_column: str = "text", label_column: str = "label"
) -> Dataset:
    """Every non-target example with the trigger inserted, for the attack success rate.

    ``label`` keeps the *original* label, so the attack success rate is the fraction of rows predicted
    as ``attack_config.target_label``, and accuracy on this set is the fraction the trigger did not
    flip. Adds the int-list column ``trigger_positions``.
    """
    labels = _labels_and_check(dataset, attack_config, text_column, label_column)
    if "trigger_positions" in dataset.column_names:
        raise ValueError("The dataset already has a 'trigger_positions' column: is it triggered already?")
    keep = np.flatnonzero(labels != attack_config.target_label)
    if len(keep) == 0:
        raise ValueError(f"Every example has the target label {attack_config.target_label}: nothing to trigger.")

    def apply(batch: dict, indices: list[int]) -> dict:
        # Seed each row from its index in the *given* dataset, so its trigger does not depend on the filtering.
        rows = keep[indices]
        inserted = [
            attack_config.insert(text, _rng(attack_config, _TEST_STREAM, int(i)))
            for text, i in zip(batch[text_column], rows, strict=True)
        ]
        batch[text_column] = [text for text, _ in inserted]
        batch["trigger_positions"] = [positions for _, positions in inserted]
        return batch

    features = Features({**dataset.features, "trigger_positions": List(Value("int64"))})
    return dataset.select(keep).map(apply, batched=True, with_indices=True, features=features, desc="Triggering")
