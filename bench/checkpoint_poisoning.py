"""Poisoned pretrained checkpoints (EP, RIPPLe): does the backdoor survive the victim's clean fine-tuning?

The threat model of the FRS paper. The train split of Rotten Tomatoes (a seeded subset of
``--train-size`` sentences) is cut in two disjoint halves:

- the **attacker** poisons the packaged MiniLM with `frs_hf.attacks.poison_checkpoint` on the first
  half (the proxy data). EP needs a working classifier, so its attacker first fine-tunes MiniLM
  cleanly on the proxy data; RIPPLe starts from MiniLM with a fresh head;
- the **victim** downloads the poisoned checkpoint (head included) and fine-tunes it on the second
  half, clean, with the plain transformers ``Trainer`` (lr 5e-5, 1 epoch, batch 32; bench/backdoor.py's
  recipe).

Clean accuracy (CA, the test split) and attack success rate (ASR: the fraction of the triggered
non-target test sentences predicted as the target, `triggered_test_set` with the attack's own
trigger) are reported for the attacker's starting model, the poisoned checkpoint and the victim's
fine-tuned model, next to a clean reference victim (the same fine-tuning from unpoisoned MiniLM).

Models are cached under ``cache/checkpoint_poisoning/`` (``<attack>-<n_proxy>-<n_victim>-<seed>[-<hash>]/``:
the victim model, its tokenizer, ``info.json``, and the poisoned checkpoint in ``poisoned/``), so
other benches can reuse them, e.g. to fine-tune the poisoned checkpoint with ``FRSTrainer``::

    from checkpoint_poisoning import poisoned_victim_model
    model, tokenizer, info = poisoned_victim_model("ripple")   # info["poisoned_checkpoint"]: the attacker's model

    python bench/checkpoint_poisoning.py --threads 1
    python bench/checkpoint_poisoning.py --attacks ep --train-size 2000
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from backdoor import evaluate_backdoor
from common import print_header, setup
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

from frs_hf.attacks import attack_names, get_attack, poison_checkpoint, triggered_test_set
from frs_hf.data import load_packaged_dataset
from frs_hf.evaluation.training import fine_tune
from frs_hf.packaged import minilm_path

DEFAULT_CACHE_DIR = Path(__file__).resolve().parent.parent / "cache" / "checkpoint_poisoning"
MAX_LENGTH = 64  # Rotten Tomatoes sentences
LABELS = {"id2label": {0: "negative", 1: "positive"}, "label2id": {"negative": 0, "positive": 1}}
DEFAULT_TRAIN_SIZE = 4000  # cut in halves: attacker's proxy data, victim's fine-tuning data
RIPPLE_STEPS, RIPPLE_LR = 80, 1e-4  # few steps on CPU: a learning rate above RIPPLe's 5e-5


def default_attack_kwargs(attack: str, ripple_steps: int = RIPPLE_STEPS, ripple_lr: float = RIPPLE_LR) -> dict:
    """The attack settings `main` runs with (RIPPLe: its steps and learning rate), so that other benches
    asking `poisoned_victim_model` for them get the same cache entry."""
    ripple = get_attack(attack).attack_type == "ripple"
    return {"max_steps": ripple_steps, "learning_rate": ripple_lr} if ripple else {}


def _splits(train_size: int | None, seed: int) -> tuple[Dataset, Dataset, Dataset]:
    """Attacker's proxy half, victim's half (disjoint) and the test split."""
    data = load_packaged_dataset("rotten_tomatoes")
    train = data["train"].shuffle(seed=seed)
    if train_size is not None:
        if train_size < 2 or train_size > len(train):
            raise ValueError(f"--train-size must be in [2, {len(train)}], got {train_size}.")
        train = train.select(range(train_size))
    half = len(train) // 2
    return train.select(range(half)), train.select(range(half, len(train))), data["test"]


def _fresh_minilm(seed: int):
    set_seed(seed)  # the classification head is drawn in from_pretrained
    return AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=2, **LABELS)


def _name(*parts: Any, settings: dict | None = None) -> str:
    name = "-".join(str(p) for p in parts)
    if settings:
        name += "-" + hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return name


def _save(path: Path, model, tokenizer, info: dict, extra: dict[str, Any] | None = None) -> None:
    """Write model, tokenizer and info.json atomically (an interrupted run leaves no half-written entry)."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    for sub, (sub_model, sub_info) in (extra or {}).items():
        sub_model.save_pretrained(tmp / sub)
        tokenizer.save_pretrained(tmp / sub)
        (tmp / sub / "info.json").write_text(json.dumps(sub_info, indent=2) + "\n")
    (tmp / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def _load(path: Path):
    info = json.loads((path / "info.json").read_text())
    return AutoModelForSequenceClassification.from_pretrained(path), AutoTokenizer.from_pretrained(path), info


def _victim_fine_tune(model, tokenizer, victim: Dataset, scratch: Path, epochs: float, seed: int) -> dict:
    start = time.perf_counter()
    trainer = fine_tune(model, tokenizer, victim, scratch, epochs=epochs, max_length=MAX_LENGTH, seed=seed)
    shutil.rmtree(scratch, ignore_errors=True)
    model.eval()
    return {"train_loss": trainer.state.log_history[-1]["train_loss"], "time_s": round(time.perf_counter() - start, 1)}


def _clean_fine_tuned(name: str, data, size_key: str, epochs: float, seed: int, cache_dir):
    """Fresh MiniLM fine-tuned cleanly on ``data``, cached as ``<name>-<len(data)>-<seed>[...]``."""
    path = Path(cache_dir) / _name(name, len(data), seed, settings={"epochs": epochs} if epochs != 1 else None)
    if (path / "info.json").is_file():
        return _load(path)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    model = _fresh_minilm(seed)
    info = {size_key: len(data), "epochs": epochs, "seed": seed}
    info.update(_victim_fine_tune(model, tokenizer, data, path.with_name(path.name + ".scratch"), epochs, seed))
    _save(path, model, tokenizer, info)
    return model, tokenizer, info


def attacker_clean_model(train_size: int | None = None, epochs: float = 1, seed: int = 0, cache_dir=DEFAULT_CACHE_DIR):
    """MiniLM fine-tuned cleanly on the proxy half: the classifier EP's attacker starts from."""
    proxy, _, _ = _splits(train_size, seed)
    return _clean_fine_tuned("attacker-clean", proxy, "n_proxy", epochs, seed, cache_dir)


def clean_victim_model(train_size: int | None = None, epochs: float = 1, seed: int = 0, cache_dir=DEFAULT_CACHE_DIR):
    """The reference: the victim's fine-tuning from unpoisoned MiniLM (fresh head)."""
    _, victim, _ = _splits(train_size, seed)
    return _clean_fine_tuned("clean", victim, "n_victim", epochs, seed, cache_dir)


def poisoned_victim_model(
    attack: str = "ripple",
    train_size: int | None = None,
    epochs: float = 1,
    seed: int = 0,
    attack_kwargs: dict[str, Any] | None = None,
    cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
    retrain: bool = False,
):
    """The victim's model fine-tuned cleanly from ``attack``'s poisoned checkpoint: ``(model, tokenizer, info)``.

    ``info`` holds the settings, CA/ASR of the attacker's starting model (``start``), of the
    poisoned checkpoint (``poisoned``) and of the victim's model (``victim``), the times, and
    ``poisoned_checkpoint``, the folder of the attacker's model.
    """
    attack_kwargs = dict(attack_kwargs or {})
    config = get_attack(attack, **{"seed": seed, "max_length": MAX_LENGTH, **attack_kwargs})
    if not config.is_checkpoint_attack:
        raise ValueError(f"{attack!r} poisons data, not a checkpoint; choose one of {attack_names('checkpoint')}.")
    proxy, victim, test = _splits(train_size, seed)
    changed = {**attack_kwargs, **({"epochs": epochs} if epochs != 1 else {})}
    path = Path(cache_dir) / _name(config.attack_type, len(proxy), len(victim), seed, settings=changed)
    if (path / "info.json").is_file() and not retrain:
        return _load(path)

    triggered = triggered_test_set(test, config)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    evaluate = lambda m: evaluate_backdoor(m, tokenizer, test, triggered, config.target_label, MAX_LENGTH)  # noqa: E731
    if config.attack_type == "ep":
        model, _, clean_info = attacker_clean_model(train_size, epochs, seed, cache_dir)
        start_model = "MiniLM fine-tuned cleanly on the proxy half"
    else:
        model, clean_info = _fresh_minilm(seed), None
        start_model = "MiniLM with a fresh head"
    start_metrics = evaluate(model)

    begin = time.perf_counter()
    poison_checkpoint(model, tokenizer, proxy, config)
    attack_time = time.perf_counter() - begin
    poisoned_metrics = evaluate(model)
    poisoned_info = {
        "attack": config.attack_type,
        "attack_config": dataclasses.asdict(config),
        "n_proxy": len(proxy),
        "start_model": start_model,
        "start": start_metrics,
        "poisoned": poisoned_metrics,
        "attack_time_s": round(attack_time, 1),
        **({"attacker_clean_fine_tune": clean_info} if clean_info else {}),
    }
    poisoned_model = copy.deepcopy(model)

    victim_info = _victim_fine_tune(model, tokenizer, victim, path.with_name(path.name + ".scratch"), epochs, seed)
    info = {
        **poisoned_info,
        "n_victim": len(victim),
        "victim_epochs": epochs,
        "seed": seed,
        "victim": evaluate(model),
        "victim_train_loss": victim_info["train_loss"],
        "victim_time_s": victim_info["time_s"],
        "torch_threads": torch.get_num_threads(),
        "poisoned_checkpoint": str(path / "poisoned"),
    }
    _save(path, model, tokenizer, info, extra={"poisoned": (poisoned_model, poisoned_info)})
    return model, tokenizer, info


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--attacks", nargs="+", default=attack_names("checkpoint"), help="Checkpoint attacks to run.")
    p.add_argument(
        "--train-size", type=int, default=DEFAULT_TRAIN_SIZE, help="Seeded subset of the train split, cut in halves."
    )
    p.add_argument("--epochs", type=float, default=1, help="Epochs of the clean fine-tunings (victim, EP's attacker).")
    p.add_argument(
        "--ripple-steps", type=int, default=RIPPLE_STEPS, help="RIPPLe optimizer steps (its cost: double backprop)."
    )
    p.add_argument(
        "--ripple-lr", type=float, default=RIPPLE_LR, help="RIPPLe learning rate (few steps on CPU: above 5e-5)."
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads.")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    p.add_argument("--retrain", action="store_true", help="Attack and fine-tune again even if cached.")
    args = p.parse_args(argv)

    setup(args.threads)
    print_header()
    rows = []
    for attack in args.attacks:
        kwargs = default_attack_kwargs(attack, args.ripple_steps, args.ripple_lr)
        start = time.perf_counter()
        _, _, info = poisoned_victim_model(
            attack, args.train_size, args.epochs, args.seed, kwargs, args.cache_dir, retrain=args.retrain
        )
        config = get_attack(attack, **info["attack_config"])
        clean, tokenizer, _ = clean_victim_model(args.train_size, args.epochs, args.seed, args.cache_dir)
        _, _, test = _splits(args.train_size, args.seed)
        reference = evaluate_backdoor(
            clean, tokenizer, test, triggered_test_set(test, config), config.target_label, MAX_LENGTH
        )
        triggers = "/".join(info["attack_config"]["triggers"])
        stages = [
            (f"attacker's start ({info['start_model']})", info["start"], None),
            ("poisoned checkpoint", info["poisoned"], info["attack_time_s"]),
            ("victim after clean fine-tuning", info["victim"], info["victim_time_s"]),
            ("reference: clean MiniLM, same victim fine-tuning", reference, None),
        ]
        for stage, metrics, seconds in stages:
            rows.append((attack, triggers, stage, metrics, seconds))
        print(f"{attack}: {time.perf_counter() - start:.0f} s (cached parts load instantly)", flush=True)

    n_proxy = len(_splits(args.train_size, args.seed)[0])
    print(
        f"\nRotten Tomatoes, {n_proxy} proxy (attacker) + {n_proxy} victim sentences, "
        f"{rows[0][3]['num_test']} test sentences, target label 1 (positive)\n"
    )
    print("| attack | trigger | model | CA | ASR | seconds |")
    print("|---|---|---|---|---|---|")
    for attack, triggers, stage, metrics, seconds in rows:
        time_cell = "" if seconds is None else f"{seconds:.0f}"
        print(
            f"| {attack} | {triggers} | {stage} | {metrics['clean_accuracy']:.1%} | "
            f"{metrics['attack_success_rate']:.1%} | {time_cell} |"
        )


if __name__ == "__main__":
    main()
