"""Poisoned pretrained checkpoints (EP, RIPPLe): does the backdoor survive the victim's clean fine-tuning?

The threat model of the FRS paper. The train split of ``--dataset`` (Rotten Tomatoes by default; a
seeded subset of ``--train-size`` texts) is cut in two disjoint halves:

- the **attacker** poisons the packaged MiniLM with `frs_hf.attacks.poison_checkpoint` on the first
  half (the proxy data). EP needs a working classifier, so its attacker first fine-tunes MiniLM
  cleanly on the proxy data; RIPPLe starts from MiniLM with a fresh head;
- the **victim** downloads the poisoned checkpoint (head included) and fine-tunes it on the second
  half, clean, with the plain transformers ``Trainer`` (by default lr 5e-5, 1 epoch, batch 32:
  bench/backdoor.py's recipe; `Recipe` holds the data and these settings, shared with EP's attacker).

Clean accuracy (CA, the test split) and attack success rate (ASR: the fraction of the triggered
non-target test texts predicted as the target, `triggered_test_set` with the attack's own
trigger) are reported for the attacker's starting model, the poisoned checkpoint and the victim's
fine-tuned model, next to a clean reference victim (the same fine-tuning from unpoisoned MiniLM).

Models are cached under ``cache/checkpoint_poisoning/`` (``[<dataset>-]<attack>-<n_proxy>-<n_victim>-<seed>[-<hash>]/``:
the victim model, its tokenizer, ``info.json``, and the poisoned checkpoint in ``poisoned/``), so
other benches can reuse them, e.g. to fine-tune the poisoned checkpoint with ``FRSTrainer``::

    from checkpoint_poisoning import poisoned_victim_model
    model, tokenizer, info = poisoned_victim_model("ripple")   # info["poisoned_checkpoint"]: the attacker's model
    model, tokenizer, info = poisoned_victim_model("ep", Recipe("bbc_news", epochs=4, learning_rate=1e-4, max_words=80))

    python bench/checkpoint_poisoning.py --threads 1
    python bench/checkpoint_poisoning.py --attacks ep --train-size 2000
    python bench/checkpoint_poisoning.py --dataset bbc_news --attacks ep --max-words 80 --max-length 128 \
        --epochs 4 --learning-rate 1e-4 --threads 1
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
from backdoor import cut_words, evaluate_backdoor, fresh_minilm, max_length_for
from common import print_header, setup
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from frs_hf.attacks import attack_names, get_attack, poison_checkpoint, triggered_test_set
from frs_hf.data import load_any_dataset
from frs_hf.evaluation.training import fine_tune
from frs_hf.packaged import minilm_path

DEFAULT_CACHE_DIR = Path(__file__).resolve().parent.parent / "cache" / "checkpoint_poisoning"
DEFAULT_TRAIN_SIZE = 4000  # Rotten Tomatoes: cut in halves, attacker's proxy data and victim's fine-tuning data
RIPPLE_STEPS, RIPPLE_LR = 80, 1e-4  # few steps on CPU: a learning rate above RIPPLe's 5e-5


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The data and the clean fine-tuning recipe that the attacker's proxy model and the victim share.

    The defaults are the Rotten Tomatoes setting of the benchmark tables; any other value names its
    own cache entry (a dataset prefix, a hash of the changed settings), so old entries stay valid.
    """

    dataset: str = "rotten_tomatoes"
    train_size: int | None = None  # None: 4,000 on Rotten Tomatoes, the whole train split elsewhere
    epochs: float = 1
    learning_rate: float = 5e-5
    batch_size: int = 32
    max_length: int | None = None  # None: bench/backdoor.py's per-dataset default (64 Rotten Tomatoes, 256 else)
    max_words: int | None = None  # cut every text to its first words (BBC News: the trigger stays in the window)
    seed: int = 0

    @classmethod
    def from_args(cls, args: argparse.Namespace, seed: int) -> Recipe:
        """From the flags this script and bench/backdoor_eval.py share (``--dataset``, ``--train-size``, ...)."""
        fields = ("dataset", "train_size", "epochs", "learning_rate", "batch_size", "max_length", "max_words")
        return cls(**{f: getattr(args, f) for f in fields}, seed=seed)

    @property
    def tokens(self) -> int:
        return max_length_for(self.dataset, self.max_length)

    def splits(self) -> tuple[Dataset, Dataset, Dataset]:
        """Attacker's proxy half, victim's half (disjoint) and the test split."""
        data = cut_words(load_any_dataset(self.dataset), self.max_words)
        train = data["train"].shuffle(seed=self.seed)
        size = self.train_size or (DEFAULT_TRAIN_SIZE if self.dataset == "rotten_tomatoes" else len(train))
        if size < 2 or size > len(train):
            raise ValueError(f"--train-size must be in [2, {len(train)}], got {size}.")
        train = train.select(range(size))
        half = len(train) // 2
        return train.select(range(half)), train.select(range(half, len(train))), data["test"]

    def name(self, *parts: Any, settings: dict | None = None) -> str:
        """Cache folder name: ``[<dataset>-]<parts>-<seed>[-<hash of the changed settings>]``."""
        defaults = Recipe()
        # "epochs" is the key the entries written before Recipe used; "victim_" keeps the others apart from
        # the attack's own settings (RIPPLe's learning_rate).
        changed = {
            ("epochs" if f.name == "epochs" else f"victim_{f.name}"): getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("dataset", "train_size", "seed") and getattr(self, f.name) != getattr(defaults, f.name)
        }
        changed.update(settings or {})
        name = "-".join(str(p) for p in (*parts, self.seed))
        if self.dataset != defaults.dataset:
            name = f"{self.dataset.replace('/', '--')}-{name}"
        if changed:
            name += "-" + hashlib.sha1(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:8]
        return name

    def fine_tune(self, model, tokenizer, data: Dataset, scratch: Path) -> dict:
        """The victim's clean fine-tuning (plain ``Trainer``), in place; its loss and time."""
        start = time.perf_counter()
        trainer = fine_tune(
            model,
            tokenizer,
            data,
            scratch,
            epochs=self.epochs,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            max_length=self.tokens,
            seed=self.seed,
        )
        shutil.rmtree(scratch, ignore_errors=True)
        model.eval()
        return {
            "train_loss": trainer.state.log_history[-1]["train_loss"],
            "time_s": round(time.perf_counter() - start, 1),
        }


def default_attack_kwargs(attack: str, ripple_steps: int = RIPPLE_STEPS, ripple_lr: float = RIPPLE_LR) -> dict:
    """The attack settings `main` runs with (RIPPLe: its steps and learning rate), so that other benches
    asking `poisoned_victim_model` for them get the same cache entry."""
    ripple = get_attack(attack).attack_type == "ripple"
    return {"max_steps": ripple_steps, "learning_rate": ripple_lr} if ripple else {}


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


def _clean_fine_tuned(name: str, data: Dataset, size_key: str, recipe: Recipe, cache_dir):
    """Fresh MiniLM fine-tuned cleanly on ``data``, cached as ``<name>-<len(data)>-<seed>[...]``."""
    path = Path(cache_dir) / recipe.name(name, len(data))
    if (path / "info.json").is_file():
        return _load(path)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    model = fresh_minilm(data, recipe.seed)
    info = {size_key: len(data), "recipe": dataclasses.asdict(recipe)}
    info.update(recipe.fine_tune(model, tokenizer, data, path.with_name(path.name + ".scratch")))
    _save(path, model, tokenizer, info)
    return model, tokenizer, info


def attacker_clean_model(recipe: Recipe = Recipe(), cache_dir=DEFAULT_CACHE_DIR):
    """MiniLM fine-tuned cleanly on the proxy half: the classifier EP's attacker starts from."""
    proxy, _, _ = recipe.splits()
    return _clean_fine_tuned("attacker-clean", proxy, "n_proxy", recipe, cache_dir)


def clean_victim_model(recipe: Recipe = Recipe(), cache_dir=DEFAULT_CACHE_DIR):
    """The reference: the victim's fine-tuning from unpoisoned MiniLM (fresh head)."""
    _, victim, _ = recipe.splits()
    return _clean_fine_tuned("clean", victim, "n_victim", recipe, cache_dir)


def poisoned_victim_model(
    attack: str = "ripple",
    recipe: Recipe = Recipe(),
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
    config = get_attack(attack, **{"seed": recipe.seed, "max_length": recipe.tokens, **attack_kwargs})
    if not config.is_checkpoint_attack:
        raise ValueError(f"{attack!r} poisons data, not a checkpoint; choose one of {attack_names('checkpoint')}.")
    proxy, victim, test = recipe.splits()
    path = Path(cache_dir) / recipe.name(config.attack_type, len(proxy), len(victim), settings=attack_kwargs)
    if (path / "info.json").is_file() and not retrain:
        return _load(path)

    triggered = triggered_test_set(test, config)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    evaluate = lambda m: evaluate_backdoor(m, tokenizer, test, triggered, config.target_label, recipe.tokens)  # noqa: E731
    if config.attack_type == "ep":
        model, _, clean_info = attacker_clean_model(recipe, cache_dir)
        start_model = "MiniLM fine-tuned cleanly on the proxy half"
    else:
        model, clean_info = fresh_minilm(proxy, recipe.seed), None
        start_model = "MiniLM with a fresh head"
    start_metrics = evaluate(model)

    begin = time.perf_counter()
    poison_checkpoint(model, tokenizer, proxy, config)
    attack_time = time.perf_counter() - begin
    poisoned_metrics = evaluate(model)
    poisoned_info = {
        "attack": config.attack_type,
        "attack_config": dataclasses.asdict(config),
        "recipe": dataclasses.asdict(recipe),
        "n_proxy": len(proxy),
        "start_model": start_model,
        "start": start_metrics,
        "poisoned": poisoned_metrics,
        "attack_time_s": round(attack_time, 1),
        **({"attacker_clean_fine_tune": clean_info} if clean_info else {}),
    }
    poisoned_model = copy.deepcopy(model)

    victim_info = recipe.fine_tune(model, tokenizer, victim, path.with_name(path.name + ".scratch"))
    info = {
        **poisoned_info,
        "n_victim": len(victim),
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
    p.add_argument("--dataset", default="rotten_tomatoes", help="rotten_tomatoes, bbc_news, imdb (packaged).")
    p.add_argument(
        "--train-size", type=int, help="Seeded subset of the train split, cut in halves (default: 4,000 RT, all else)."
    )
    p.add_argument("--epochs", type=float, default=1, help="Epochs of the clean fine-tunings (victim, EP's attacker).")
    p.add_argument("--learning-rate", type=float, default=5e-5, help="Learning rate of the clean fine-tunings.")
    p.add_argument("--batch-size", type=int, default=32, help="Batch size of the clean fine-tunings.")
    p.add_argument("--max-length", type=int, help="Tokens (default: 64 Rotten Tomatoes, 256 IMDB / BBC News).")
    p.add_argument("--max-words", type=int, help="Cut every text to its first words (BBC News: 80).")
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
    recipe = Recipe.from_args(args, seed=args.seed)
    proxy, victim, test = recipe.splits()
    rows = []
    for attack in args.attacks:
        kwargs = default_attack_kwargs(attack, args.ripple_steps, args.ripple_lr)
        start = time.perf_counter()
        _, _, info = poisoned_victim_model(attack, recipe, kwargs, args.cache_dir, retrain=args.retrain)
        config = get_attack(attack, **info["attack_config"])
        clean, tokenizer, _ = clean_victim_model(recipe, args.cache_dir)
        triggered = triggered_test_set(test, config)
        reference = evaluate_backdoor(clean, tokenizer, test, triggered, config.target_label, recipe.tokens)
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

    target = config.target_label
    names = test.features["label"].names if hasattr(test.features["label"], "names") else None
    print(
        f"\n{args.dataset}, {len(proxy)} proxy (attacker) + {len(victim)} victim texts, {len(test)} test texts, "
        f"target label {target}" + (f" ({names[target]})" if names else "") + f"; {recipe}\n"
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
