"""``frs-hf demo``: a backdoor attack and the FRS defense, end to end, offline.

Poisons Rotten Tomatoes with BadNet, fine-tunes the packaged MiniLM twice on the poisoned data
(plain ``Trainer``: the undefended victim; `FRSTrainer`: the FRS model), then evaluates no defense,
uniform deletion smoothing and FRS on clean and triggered test sentences, prints the table and
writes the report (Markdown, JSON, PNG) and both models.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field

from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

from ..attacks import BadNetConfig, poison_dataset, triggered_test_set
from ..baselines.base import NoDefense
from ..baselines.smoothing import FRSDefense, UniformDeletionDefense
from ..config import FRSConfig
from ..data import load_packaged_dataset
from ..modeling import SmoothedModelForSequenceClassification
from ..packaged import minilm_path
from .report import BackdoorReport, evaluate_defenses
from .training import fine_tune

MAX_LENGTH = 64  # tokens; Rotten Tomatoes sentences are shorter


@dataclass
class DemoConfig:
    """Settings of `run_demo`; the defaults are the README's run, ``fast=True`` a tiny smoke test."""

    output_dir: str = field(default="frs-demo", metadata={"help": "Where the report and both models go."})
    train_size: int | None = field(
        default=None, metadata={"help": "Seeded subset of the 7,677 training sentences (default: all)."}
    )
    num_test: int = field(
        default=100, metadata={"help": "Clean and triggered test sentences evaluated (each, seeded subset)."}
    )
    calibration_texts: int = field(
        default=0,
        metadata={
            "help": "Held-out test sentences (never evaluated) on which FRS's fuzzing floor (min_kl) is calibrated "
            "(SmoothedModelForSequenceClassification.calibrate_fuzzing); 0 keeps the default floor."
        },
    )
    calibration_empty_fraction: float = field(
        default=0.8, metadata={"help": "Share of the held-out sentences the calibrated floor leaves without an area."}
    )
    reference_texts: int = field(
        default=16,
        metadata={
            "help": "Held-out test sentences (never evaluated, as many of each label) kept as the references of "
            "FRS's transplant test (FuzzingConfig.reference_texts: an area stays only if it moves other texts as a "
            "trigger does); 0: no test."
        },
    )
    poison_rate: float = field(default=0.1, metadata={"help": "Fraction of the training set poisoned by BadNet."})
    epochs: float = field(default=1.0, metadata={"help": "Training epochs of both models."})
    n: int = field(default=100, metadata={"help": "Randomized copies per sentence for the smoothing defenses."})
    alpha: float = field(default=0.05, metadata={"help": "Significance level of the smoothing defenses."})
    omega_low: float = field(default=0.1, metadata={"help": "FRS deletion rate outside the fuzzed area."})
    omega_high: float = field(default=0.95, metadata={"help": "FRS deletion rate inside the fuzzed area."})
    uniform_rate: float | None = field(
        default=None,
        metadata={
            "help": "Deletion rate of the uniform smoothing baseline (default: omega_low, i.e. FRS without its fuzzed "
            "area, at about FRS's clean accuracy)."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the poisoning, training and smoothing."})
    fast: bool = field(
        default=False, metadata={"help": "Tiny smoke run (256 training and 16 test sentences, n=20): seconds."}
    )

    def __post_init__(self) -> None:
        if self.uniform_rate is None:
            self.uniform_rate = self.omega_low
        if self.fast:
            self.train_size, self.num_test, self.n = 256, 16, 20
        if self.num_test < 1:
            raise ValueError(f"num_test must be at least 1, got {self.num_test}.")
        for name in ("calibration_texts", "reference_texts"):
            if not 0 <= getattr(self, name) <= 400:
                raise ValueError(f"{name} must be in [0, 400] (of 853 test sentences), got {getattr(self, name)}.")
        FRSConfig(omega_low=self.omega_low, omega_high=self.omega_high, n=self.n, n0=min(10, self.n), alpha=self.alpha)


def split_held_out(test: Dataset, num_held_out: int) -> tuple[Dataset, Dataset]:
    """The last ``num_held_out`` rows apart (for calibration), the rest for evaluation: the first
    rows, which the evaluation draws from, stay the same whatever ``num_held_out``."""
    cut = len(test) - num_held_out
    # datasets rejects an empty range at the end (select(range(n, n))), hence select([]) for none.
    return test.select(range(cut)), test.select(range(cut, len(test))) if num_held_out else test.select([])


def split_references(test: Dataset, num_references: int) -> tuple[Dataset, Dataset]:
    """``num_references`` rows from the end, as many of each label as can be (the transplant test needs
    references of every class), and the rows before the first of them."""
    labels = test["label"]
    classes = sorted(set(labels))
    quota = {c: num_references // len(classes) + (i < num_references % len(classes)) for i, c in enumerate(classes)}
    picked = []
    for i in range(len(test) - 1, -1, -1):
        if len(picked) == num_references:
            break
        if quota[labels[i]]:
            quota[labels[i]] -= 1
            picked.append(i)
    cut = min(picked, default=len(test))
    return test.select(range(cut)), test.select(sorted(picked))


def run_demo(config: DemoConfig | None = None) -> BackdoorReport:
    """Run the demo; writes ``report.{md,json,png}``, ``undefended/`` and ``frs/`` under ``output_dir``."""
    config = config or DemoConfig()
    start = time.perf_counter()
    data = load_packaged_dataset("rotten_tomatoes")
    train, test = data["train"], data["test"].shuffle(seed=config.seed)
    test, reference_rows = split_references(test, config.reference_texts)
    test, held_out = split_held_out(test, config.calibration_texts)
    references = list(reference_rows["text"]) or None
    if config.train_size is not None:
        train = train.shuffle(seed=config.seed).select(range(min(config.train_size, len(train))))
    attack = BadNetConfig(poison_rate=config.poison_rate, target_label=1, seed=config.seed)
    poisoned = poison_dataset(train, attack)
    clean = test.select(range(min(config.num_test, len(test))))
    triggered = triggered_test_set(test, attack)
    triggered = triggered.select(range(min(config.num_test, len(triggered))))

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    models, train_seconds = {}, {}
    for name, frs in (("undefended", None), ("frs", {"frs_config": FRSConfig(omega_low=config.omega_low)})):
        set_seed(config.seed)  # the same classification head for both
        model = AutoModelForSequenceClassification.from_pretrained(
            minilm_path(),
            num_labels=2,
            id2label={0: "negative", 1: "positive"},
            label2id={"negative": 0, "positive": 1},
        )
        tick = time.perf_counter()
        trainer = fine_tune(
            model,
            tokenizer,
            poisoned,
            os.path.join(config.output_dir, f"{name}-scratch"),
            frs=frs,
            epochs=config.epochs,
            max_length=MAX_LENGTH,
            seed=config.seed,
            disable_tqdm=False,
        )
        train_seconds[name] = time.perf_counter() - tick
        shutil.rmtree(trainer.args.output_dir, ignore_errors=True)
        path = os.path.join(config.output_dir, name)
        if frs is None:
            trainer.save_model(path)
        else:
            trainer.save_smoothed_model(path)
        models[name] = model

    smoothing = FRSConfig(
        omega_low=config.omega_low,
        omega_high=config.omega_high,
        n=config.n,
        n0=min(10, config.n),
        alpha=config.alpha,
        max_length=MAX_LENGTH,
        seed=config.seed,
        fuzzing_config={"reference_texts": references},
    )
    smoothed = SmoothedModelForSequenceClassification(models["frs"], tokenizer, smoothing)
    if config.calibration_texts:
        smoothed.calibrate_fuzzing(list(held_out["text"]), empty_fraction=config.calibration_empty_fraction)
    # The saved model certifies as the demo's FRS row does: fuzzing on, its rates, the fitted fuzzing settings
    # (the demo's small n, alpha and fixed seed stay out: they are for speed and reproducibility, not for users).
    path = os.path.join(config.output_dir, "frs")
    fitted = {k: getattr(smoothed.frs_config.fuzzing_config, k) for k in ("min_kl", "reference_texts")}
    FRSConfig.from_pretrained(path).replace(
        fuzzing=True, omega_high=config.omega_high, fuzzing_config=fitted
    ).save_pretrained(path)
    defenses = {
        "undefended": lambda seed: NoDefense(models["undefended"], tokenizer, max_length=MAX_LENGTH),
        "FRS-trained, no smoothing": lambda seed: NoDefense(models["frs"], tokenizer, max_length=MAX_LENGTH),
        f"uniform deletion {config.uniform_rate}": lambda seed: UniformDeletionDefense(
            smoothed, config.uniform_rate, seed=seed
        ),
        "FRS": lambda seed: FRSDefense(smoothed, seed=seed),
    }
    report = evaluate_defenses(
        defenses,
        list(clean["text"]),
        list(clean["label"]),
        list(triggered["text"]),
        list(triggered["label"]),
        target_label=attack.target_label,
        seeds=[config.seed],
        metadata={
            "demo": asdict(config),
            "attack": {"name": "badnet", **asdict(attack)},
            "train_seconds": train_seconds,
            "fuzzing_min_kl": smoothed.frs_config.fuzzing_config.min_kl,
            "reference_texts": len(references or ()),
        },
    )
    report.metadata["total_seconds"] = time.perf_counter() - start
    report.save(config.output_dir)
    return report
