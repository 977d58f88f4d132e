"""Backdoored MiniLM classifiers for the benchmarks, trained once and cached.

Fine-tunes the packaged all-MiniLM-L6-v2 with the plain transformers ``Trainer`` on a poisoned
train split (`frs_hf.attacks.poison_dataset`) and reports the undefended model's clean accuracy
(CA, on the test split) and attack success rate (ASR: the fraction of the triggered non-target
test examples predicted as the target label). The model, tokenizer and ``info.json`` are saved
under ``cache/backdoor/<dataset>-<attack>-<n_train>-<seed>[-<settings hash>]/``, so the next call
loads them instantly. Other bench scripts import it (``bench/`` is on ``sys.path`` when they run):

    from backdoor import backdoored_model
    model, tokenizer, info = backdoored_model("rotten_tomatoes", "badnet")

    python bench/backdoor.py --dataset rotten_tomatoes --attack badnet
    python bench/backdoor.py --dataset rotten_tomatoes --attack badnet --poison-rate 0   # clean reference
    python bench/backdoor.py --dataset imdb --attack badnet --train-size 4000

Measured on 2 shared CPU cores (1 epoch, batch 32, lr 5e-5): Rotten Tomatoes BadNet CA 81.6% / ASR
99.8%, AddSent CA 81.2% / ASR 99.8% (clean model: CA 82.5%), about 2 min each. IMDB BadNet on 4,000
reviews at 256 tokens: CA 84.0% but ASR only 20.6% (about 23 min under load): one epoch at 5e-5 is too
little for a 1-3-word trigger in a long review (it is within the first 256 tokens in 91% of the triggered
test reviews), so IMDB needs more epochs, a higher learning rate or a higher poison rate (3,000 reviews,
2 epochs at 1e-4, 20% poisoned: CA 82.9%, ASR 94.3%). BBC News, cut to 80 words, 4 epochs at 1e-4, 20%
poisoned: CA 96.9%, ASR 100% (10% poisoned, 3 epochs: ASR 1.6%).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import print_header, setup
from datasets import ClassLabel, Dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    set_seed,
)

from frs_hf.attacks import get_attack, poison_dataset, triggered_test_set
from frs_hf.baselines import class_probabilities
from frs_hf.data import PACKAGED_DATASETS, load_any_dataset
from frs_hf.evaluation.training import fine_tune
from frs_hf.packaged import minilm_path

DEFAULT_CACHE_DIR = Path(__file__).resolve().parent.parent / "cache" / "backdoor"
DEFAULT_MAX_LENGTH = {"rotten_tomatoes": 64, "imdb": 256, "bbc_news": 256}
# Training settings that, when changed, get their own cache folder (a hash suffix).
DEFAULT_TRAINING = {"epochs": 1, "batch_size": 32, "learning_rate": 5e-5, "max_length": None, "max_words": None}


def _num_labels(train: Dataset) -> tuple[int, list[str] | None]:
    feature = train.features["label"]
    if isinstance(feature, ClassLabel):
        return feature.num_classes, feature.names
    return int(max(train["label"])) + 1, None


def predict(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 128) -> np.ndarray:
    """Argmax labels of ``texts`` (`frs_hf.baselines.class_probabilities`: sorted by length, padded per batch)."""
    return class_probabilities(model, tokenizer, texts, max_length=max_length, batch_size=batch_size).argmax(-1)


def evaluate_backdoor(model, tokenizer, test: Dataset, triggered: Dataset, target_label: int, max_length: int) -> dict:
    """Clean accuracy on ``test`` and attack success rate on ``triggered`` (fraction predicted as target)."""
    clean = predict(model, tokenizer, list(test["text"]), max_length)
    attacked = predict(model, tokenizer, list(triggered["text"]), max_length)
    return {
        "clean_accuracy": float((clean == np.asarray(test["label"])).mean()),
        "attack_success_rate": float((attacked == target_label).mean()),
        "num_test": len(test),
        "num_triggered": len(triggered),
    }


def max_length_for(dataset: str, max_length: int | None = None) -> int:
    """``max_length``, or the dataset's default window (128 tokens for a dataset not listed)."""
    return max_length or DEFAULT_MAX_LENGTH.get(dataset, 128)


def cut_words(data, max_words: int | None):
    """Every text cut to its first ``max_words`` words (None: unchanged)."""
    if max_words is None:
        return data
    return data.map(lambda text: {"text": " ".join(text.split()[:max_words])}, input_columns="text")


def poisoning_splits(
    dataset: str,
    attack: str,
    train_size: int | None = None,
    seed: int = 0,
    attack_kwargs: dict | None = None,
    max_words: int | None = None,
):
    """``(attack config, train, test)`` as `backdoored_model` uses them: ``train`` is the clean train split
    (a seeded subset of ``train_size``), to be poisoned with `frs_hf.attacks.poison_dataset`.

    ``max_words`` cuts every text to its first words *before* poisoning, so that a trigger inserted
    at a random position is always inside the model's window (BBC News articles run to 600 words).
    """
    config = get_attack(attack, **{"seed": seed, **(attack_kwargs or {})})
    data = cut_words(load_any_dataset(dataset), max_words)
    train, test = data["train"], data["test"]
    if train_size is not None and train_size < len(train):
        train = train.shuffle(seed=seed).select(range(train_size))
    return config, train, test


def fresh_minilm(train: Dataset, seed: int = 0):
    """The packaged MiniLM with a classification head for ``train``'s labels, drawn under ``seed``."""
    num_labels, names = _num_labels(train)
    set_seed(seed)  # the classification head is drawn in from_pretrained
    return AutoModelForSequenceClassification.from_pretrained(
        minilm_path(),
        num_labels=num_labels,
        **({"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}} if names else {}),
    )


def _cache_name(dataset: str, attack: str, n_train: int, seed: int, settings: dict) -> str:
    name = f"{dataset.replace('/', '--')}-{attack}-{n_train}-{seed}"
    changed = {k: v for k, v in settings.items() if k in DEFAULT_TRAINING and v != DEFAULT_TRAINING[k]}
    changed.update(settings["attack_kwargs"])
    if changed:
        name += "-" + hashlib.sha1(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:8]
    return name


def backdoored_model(
    dataset: str = "rotten_tomatoes",
    attack: str = "badnet",
    train_size: int | None = None,
    epochs: float = 1,
    max_length: int | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    attack_kwargs: dict[str, Any] | None = None,
    retrain: bool = False,
    max_words: int | None = None,
):
    """A MiniLM fine-tuned on ``dataset``'s train split poisoned by ``attack``: ``(model, tokenizer, info)``.

    ``train_size`` takes a seeded random subset of the train split (None: all of it); ``max_length``
    defaults to 64 tokens for Rotten Tomatoes and 256 for IMDB / BBC News; ``attack_kwargs`` go to
    the attack config (e.g. ``{"poison_rate": 0.0}`` for a clean reference model); ``max_words`` cuts
    every text to its first words (`poisoning_splits`). ``info`` holds
    the settings, CA, ASR and the training time of the run that filled the cache.
    """
    attack_kwargs = dict(attack_kwargs or {})
    config, train, test = poisoning_splits(dataset, attack, train_size, seed, attack_kwargs, max_words)
    if config.is_checkpoint_attack:
        raise ValueError(f"{attack!r} poisons a checkpoint, not the training data: use bench/checkpoint_poisoning.py.")
    settings = {
        "dataset": dataset,
        "attack": attack,
        "attack_kwargs": attack_kwargs,
        "attack_config": {**config.__dict__},
        "train_size": train_size,
        "epochs": epochs,
        "max_length": max_length,
        "max_words": max_words,
        "seed": seed,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
    }
    max_length = max_length_for(dataset, max_length)
    path = Path(cache_dir) / _cache_name(dataset, attack, len(train), seed, settings)
    if (path / "info.json").is_file() and not retrain:
        info = json.loads((path / "info.json").read_text())
        return AutoModelForSequenceClassification.from_pretrained(path), AutoTokenizer.from_pretrained(path), info

    poisoned = poison_dataset(train, config)
    triggered = triggered_test_set(test, config)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    model = fresh_minilm(train, seed)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    start = time.perf_counter()
    trainer = fine_tune(
        model,
        tokenizer,
        poisoned,
        tmp,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_length=max_length,
        seed=seed,
    )
    train_time = time.perf_counter() - start
    trainer.save_model(str(tmp))  # before evaluating, so that an evaluation error does not cost the training
    start = time.perf_counter()
    metrics = evaluate_backdoor(model, tokenizer, test, triggered, config.target_label, max_length)
    eval_time = time.perf_counter() - start
    info = {
        **settings,
        "max_length": max_length,
        "n_train": len(train),
        "n_poisoned": int(sum(poisoned["poisoned"])),
        **metrics,
        "train_loss": trainer.state.log_history[-1]["train_loss"],
        "train_time_s": round(train_time, 1),
        "eval_time_s": round(eval_time, 1),
        "torch_threads": torch.get_num_threads(),
    }
    (tmp / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)  # atomic: an interrupted run never leaves a half-written cache entry
    model.eval()
    return model, tokenizer, info


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="rotten_tomatoes", help=f"{', '.join(PACKAGED_DATASETS)} or a Hub dataset.")
    p.add_argument("--attack", default="badnet", help="badnet or addsent (data poisoning).")
    p.add_argument("--poison-rate", type=float, default=None, help="Fraction poisoned (default: the attack's, 0.1).")
    p.add_argument("--train-size", type=int, default=None, help="Seeded random subset of the train split.")
    p.add_argument("--epochs", type=float, default=1)
    p.add_argument("--max-length", type=int, default=None, help="Tokens (default: 64 Rotten Tomatoes, 256 IMDB).")
    p.add_argument("--max-words", type=int, default=None, help="Cut every text to its first words (BBC News).")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads.")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    p.add_argument("--retrain", action="store_true", help="Train again even if the cache has the model.")
    args = p.parse_args(argv)

    setup(args.threads)
    print_header()
    attack_kwargs = {} if args.poison_rate is None else {"poison_rate": args.poison_rate}
    start = time.perf_counter()
    _, _, info = backdoored_model(
        args.dataset,
        args.attack,
        train_size=args.train_size,
        epochs=args.epochs,
        max_length=args.max_length,
        seed=args.seed,
        cache_dir=args.cache_dir,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        attack_kwargs=attack_kwargs,
        retrain=args.retrain,
        max_words=args.max_words,
    )
    wall = time.perf_counter() - start
    print(
        f"{info['dataset']} / {info['attack']} (poison rate {info['attack_config']['poison_rate']}, "
        f"{info['n_poisoned']} of {info['n_train']} train examples poisoned, max_length {info['max_length']}, "
        f"{info['epochs']} epoch)\n"
        f"  CA  = {info['clean_accuracy']:.2%} on {info['num_test']} test examples\n"
        f"  ASR = {info['attack_success_rate']:.2%} on {info['num_triggered']} triggered non-target test examples\n"
        f"  train {info['train_time_s']:.0f} s, eval {info['eval_time_s']:.0f} s (when cached); this call {wall:.1f} s"
    )


if __name__ == "__main__":
    main()
