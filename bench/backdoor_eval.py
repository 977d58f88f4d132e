"""The backdoor benchmark: every defense against one attack, one Markdown table per run.

Three scenarios (one per table of the benchmark):

- **A**, poisoned pretrained checkpoint (``--attack ep`` or ``ripple``): the
  attacker's checkpoint of ``bench/checkpoint_poisoning.py``, fine-tuned by the victim on clean data
  twice: with the plain ``Trainer`` (its cached victim) and with ``FRSTrainer``.
- **B**, poisoned fine-tuning data (``--attack badnet`` or ``addsent``): the victim trains on the
  poisoned train split with the plain ``Trainer`` (``bench/backdoor.py``'s cached model) and, on the
  same poisoned data, with ``FRSTrainer``.
- **C**, inference only (any of the four attacks): every defense wraps the undefended backdoored
  classifier; the FRS row goes through ``pipeline("frs-certified-classification")``, so that the
  pipeline is what is measured.

Rows: ``none``, ``uniform-deletion``, ``uniform-masking``, ``strip`` and ``onion`` around the
plain-trained model; ``frs`` on the FRSTrainer model (A, B) or through the pipeline (C); in A and B
also ``frs (plain-trained)``, FRS inference on the plain-trained model, which separates what FRS's
training and its inference contribute. The smoothing defenses share one Monte Carlo budget (``--n``,
``--n0``, ``--alpha``); STRIP calibrates on held-out clean training texts (the victim's clean data),
never test texts. FRSTrainer models are cached under ``<cache-dir>/backdoor_eval/models/``; the
report (``report.md``, ``report.json``, ``report.png``) goes to ``--output``.

    python bench/backdoor_eval.py --scenario A --attack ripple --threads 2
    python bench/backdoor_eval.py --scenario B --attack badnet --defenses none,frs
    python bench/backdoor_eval.py --scenario C --attack addsent --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import backdoor
import checkpoint_poisoning
import torch
from backdoor import backdoored_model, fresh_minilm, poisoning_splits
from checkpoint_poisoning import Recipe, default_attack_kwargs, poisoned_victim_model
from common import FLAT_TRAINING, print_header, setup, training_arguments
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, pipeline

import frs_hf  # noqa: F401  (registers the frs-certified-classification pipeline)
from frs_hf.attacks import get_attack, poison_dataset
from frs_hf.baselines import Defense, DefenseOutput, build_defense
from frs_hf.config import FRSConfig, FuzzingConfig, WeightNoiseConfig
from frs_hf.evaluation import backdoor_test_sets, evaluate_defenses
from frs_hf.evaluation.training import fine_tune
from frs_hf.trainer import FRSTrainingArguments

DEFAULT_CACHE_ROOT = backdoor.DEFAULT_CACHE_DIR.parent  # cache/: backdoor/, checkpoint_poisoning/, backdoor_eval/
SCENARIO_ATTACKS = {"A": ("ep", "ripple"), "B": ("badnet", "addsent"), "C": ("badnet", "addsent", "ep", "ripple")}
PLAIN_FRS = "frs (plain-trained)"  # row name; "frs-plain-trained" in --defenses
BASELINES = ("none", "uniform-deletion", "uniform-masking", "strip", "onion")
# FRSTrainer settings offered as --frs-* flags (the scalar ones; evaluation during training stays off, and the
# references the trainer would keep are --reference-texts here, given to every FRS row alike).
FRS_TRAIN_FIELDS = {
    f.name: f
    for f in dataclasses.fields(FRSTrainingArguments)
    if f.name.startswith("frs_")
    and f.name not in ("frs_eval_n", "frs_eval_max_examples", "frs_reference_texts", "frs_config", *FLAT_TRAINING)
    and f.type in ("bool", "int", "float")
}


class PipelineFRSDefense(Defense):
    """FRS as users call it: ``pipeline("frs-certified-classification")``, its outputs mapped to `DefenseOutput`.

    The pipeline seeds each text by its content (`frs_hf.pipeline.text_index`), not by ``indices``.
    """

    name = "frs"
    certifies = True

    def __init__(self, certifier, *, seed: int = 0, batch_size: int = 32) -> None:
        self.certifier, self.seed, self.batch_size = certifier, seed, batch_size
        self.label_ids = {name: i for i, name in certifier.smoothed.id2label.items()}

    def predict(self, texts: Sequence[str], *, indices: Sequence[int] | None = None) -> list[DefenseOutput]:
        outputs = self.certifier(list(texts), batch_size=self.batch_size, seed=self.seed)
        return [
            DefenseOutput(
                label=None if out["abstained"] else self.label_ids[out["label"]],
                radius=out["radius"],
                area_radius=out["area_radius"] if out["vulnerable_spans"] else None,
            )
            for out in outputs
        ]


def frs_trained_model(
    name: str,
    settings: dict[str, Any],
    cache_dir: Path,
    start,
    tokenizer,
    train: Dataset,
    *,
    frs: dict[str, Any],
    progress: bool,
):
    """``start()`` fine-tuned on ``train`` with FRSTrainer (`frs_hf.evaluation.training.fine_tune`), cached
    under ``cache_dir/<name>-<hash of settings>``: ``(model, info)``."""
    digest = hashlib.sha1(json.dumps({**settings, "frs": frs}, sort_keys=True).encode()).hexdigest()[:8]
    path = cache_dir / f"{name}-{digest}"
    if (path / "info.json").is_file():
        return AutoModelForSequenceClassification.from_pretrained(path), json.loads((path / "info.json").read_text())
    model = start()
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    begin = time.perf_counter()
    trainer = fine_tune(
        model,
        tokenizer,
        train,
        tmp.with_name(tmp.name + ".scratch"),
        frs=training_arguments(frs),
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
        max_length=settings["max_length"],
        seed=settings["seed"],
        disable_tqdm=not progress,
    )
    info = {
        **settings,
        "frs": frs,
        "n_train": len(train),
        "train_loss": trainer.state.log_history[-1].get("train_loss"),
        "train_time_s": round(time.perf_counter() - begin, 1),
        "torch_threads": torch.get_num_threads(),
    }
    shutil.rmtree(trainer.args.output_dir, ignore_errors=True)
    trainer.save_smoothed_model(tmp)
    (tmp / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)  # atomic: an interrupted run leaves no half-written cache entry
    model.eval()
    return model, info


def load_models(args: argparse.Namespace, frs: dict[str, Any]) -> dict[str, Any]:
    """The scenario's models and data: plain-trained model, FRSTrainer model (A, B), tokenizer, attack
    config, test split, STRIP's clean texts, max_length and what the caches say about the models."""
    root = Path(args.cache_dir)
    # Only settings given on the command line: any attack setting, even a default one, names a new cache entry.
    attack_kwargs = {
        k: v for k, v in (("target_label", args.target_label), ("poison_rate", args.poison_rate)) if v is not None
    }
    models_dir = root / "backdoor_eval" / "models"
    out: dict[str, Any] = {}
    if get_attack(args.attack).is_checkpoint_attack:
        attack_kwargs.update(default_attack_kwargs(args.attack, args.ripple_steps, args.ripple_lr))
        recipe = Recipe.from_args(args, seed=args.model_seed)
        cache = root / checkpoint_poisoning.DEFAULT_CACHE_DIR.name
        plain, tokenizer, info = poisoned_victim_model(args.attack, recipe, attack_kwargs, cache)
        _, victim, test = recipe.splits()
        config = get_attack(args.attack, **info["attack_config"])
        max_length = recipe.tokens
        out["undefended"] = {"victim": info["victim"], "poisoned checkpoint": info["poisoned"]}
        clean_train, frs_train = victim, victim  # the victim's own clean fine-tuning data
        checkpoint = Path(info["poisoned_checkpoint"])
        start = lambda: AutoModelForSequenceClassification.from_pretrained(checkpoint)  # noqa: E731
        start_name = checkpoint.parent.name
    else:
        cache = root / backdoor.DEFAULT_CACHE_DIR.name
        plain, tokenizer, info = backdoored_model(
            args.dataset,
            args.attack,
            train_size=args.train_size,
            epochs=args.epochs,
            max_length=args.max_length,
            seed=args.model_seed,
            cache_dir=cache,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            attack_kwargs=attack_kwargs,
            max_words=args.max_words,
        )
        config, clean_train, test = poisoning_splits(
            args.dataset, args.attack, args.train_size, args.model_seed, attack_kwargs, args.max_words
        )
        max_length = info["max_length"]
        out["undefended"] = {k: info[k] for k in ("clean_accuracy", "attack_success_rate", "num_test", "train_time_s")}
        frs_train = poison_dataset(clean_train, config) if args.scenario == "B" else None
        start = lambda: fresh_minilm(clean_train, args.model_seed)  # noqa: E731
        start_name = "minilm"
    plain.eval()
    out.update(plain=plain, tokenizer=tokenizer, config=config, test=test, max_length=max_length)
    strip_pool = clean_train.shuffle(seed=args.model_seed)
    out["strip_texts"] = list(strip_pool.select(range(min(args.strip_texts, len(strip_pool))))["text"])
    if args.scenario != "C" and "frs" in args.defense_names:
        settings = {
            "scenario": args.scenario,
            "dataset": args.dataset,
            "attack": args.attack,
            "attack_config": dataclasses.asdict(config),
            "start": start_name,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "max_length": max_length,
            **({"max_words": args.max_words} if args.max_words else {}),  # absent: old cache keys stay valid
            "seed": args.model_seed,
        }
        name = f"{args.scenario}-{args.dataset.replace('/', '--')}-{args.attack}-{len(frs_train)}-{args.model_seed}"
        out["frs_model"], out["frs_info"] = frs_trained_model(
            name, settings, models_dir, start, tokenizer, frs_train, frs=frs, progress=args.progress
        )
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", required=True, choices=list(SCENARIO_ATTACKS), help="A, B or C (module docstring).")
    p.add_argument("--dataset", default="rotten_tomatoes", help="rotten_tomatoes, imdb, bbc_news.")
    p.add_argument("--attack", required=True, help="A: ep, ripple; B: badnet, addsent; C: any of the four.")
    p.add_argument("--defenses", help=f"Comma list (default: {','.join(BASELINES)},frs[,frs-plain-trained in A/B]).")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="Defense seeds (intervals over seeds).")
    p.add_argument("--num-examples", type=int, default=200, help="Clean and triggered test texts (each).")
    p.add_argument("--max-radius", type=int, default=3)
    p.add_argument("--texts-per-call", type=int, default=32)
    g = p.add_argument_group("smoothing (uniform deletion, uniform masking and FRS share the budget)")
    g.add_argument("--n", type=int, default=200, help="Randomized copies that estimate the vote.")
    g.add_argument("--n0", type=int, default=20, help="Copies that pick the candidate class.")
    g.add_argument("--alpha", type=float, default=0.05)
    g.add_argument(
        "--omega-low", type=float, default=FRSConfig.omega_low, help="FRS deletion rate outside the fuzzed area."
    )
    g.add_argument("--omega-high", type=float, default=0.95, help="FRS deletion rate inside the fuzzed area.")
    g.add_argument("--fuzzing-budget", type=int, default=FuzzingConfig.budget, help="FRS fuzzing forwards per text.")
    g.add_argument(
        "--fuzzing-partner-words",
        action=argparse.BooleanOptionalAction,
        default=FuzzingConfig.partner_words,
        help="FRS fuzzing flags a half-ignored second trigger word (docs/fuzzing.md; default: with --reference-texts).",
    )
    g.add_argument(
        "--fuzzing-min-kl",
        type=float,
        default=FuzzingConfig.min_kl,
        help="FRS fuzzing floor in nats (e.g. one fitted by bench/fuzzing.py's mcts-calibrated).",
    )
    g.add_argument(
        "--reference-texts",
        type=int,
        default=0,
        help="FRS fuzzing's transplant test on this many of STRIP's clean texts (fuzzing_reference_texts; 0: off).",
    )
    g.add_argument(
        "--transplant-confidence",
        type=float,
        default=FuzzingConfig.transplant_confidence,
        help="Probability a reference must reach to count as moved by an area (FuzzingConfig.transplant_confidence).",
    )
    g.add_argument("--uniform-rate", type=float, default=0.5, help="Deletion rate of uniform-deletion.")
    g.add_argument("--masking-rate", type=float, default=0.5, help="Masking rate of uniform-masking.")
    g.add_argument(
        "--weight-noise-sigma", type=float, help="Inference weight noise (default: --frs-weight-noise-sigma)."
    )
    g.add_argument("--strip-texts", type=int, default=400, help="Held-out clean training texts for STRIP.")
    g = p.add_argument_group(
        "models (cached; the defaults hit the caches of bench/backdoor.py, checkpoint_poisoning.py)"
    )
    g.add_argument("--train-size", type=int, help="Seeded train subset (default all; A: 4,000 on RT, halved).")
    g.add_argument("--epochs", type=float, default=1.0)
    g.add_argument("--learning-rate", type=float, default=5e-5, help="Training (A: the clean fine-tunings).")
    g.add_argument("--batch-size", type=int, default=32, help="Training (A: the clean fine-tunings).")
    g.add_argument("--max-length", type=int, help="Tokens (default: 64 Rotten Tomatoes, 256 IMDB / BBC News).")
    g.add_argument("--max-words", type=int, help="Cut every text to its first words before poisoning (BBC News).")
    g.add_argument("--poison-rate", type=float, help="Attack's poison rate (default: the attack's).")
    g.add_argument("--target-label", type=int, help="Attack's target label (default: the attack's, 1).")
    g.add_argument("--ripple-steps", type=int, default=checkpoint_poisoning.RIPPLE_STEPS)
    g.add_argument("--ripple-lr", type=float, default=checkpoint_poisoning.RIPPLE_LR)
    g.add_argument("--model-seed", type=int, default=0, help="Seed of poisoning, training and the test subset.")
    g = p.add_argument_group("FRSTrainer (A, B)")
    for name, default in FLAT_TRAINING.items():  # the rates and weight noise of training (in its frs_config)
        g.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    for name, f in FRS_TRAIN_FIELDS.items():
        flag = "--" + name.replace("_", "-")
        if f.type == "bool":
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=f.metadata["help"])
        else:
            g.add_argument(flag, type={"int": int, "float": float}[f.type], default=f.default, help=f.metadata["help"])
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's).")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE_ROOT), help="Root of the model caches (default: cache/).")
    p.add_argument("--output", help="Report folder (default: <cache-dir>/backdoor_eval/<scenario>-<dataset>-<attack>).")
    p.add_argument("--no-plot", action="store_true", help="Skip report.png.")
    p.add_argument("--progress", action="store_true", help="Progress bars.")
    args = p.parse_args(argv)

    args.attack = args.attack.lower()
    if args.attack not in SCENARIO_ATTACKS[args.scenario]:
        p.error(f"scenario {args.scenario} takes --attack {' or '.join(SCENARIO_ATTACKS[args.scenario])}.")
    known = [*BASELINES, "frs"] + (["frs-plain-trained"] if args.scenario != "C" else [])
    args.defense_names = [d.strip() for d in (args.defenses or ",".join(known)).split(",") if d.strip()]
    unknown = [d for d in args.defense_names if d not in known]
    if unknown or not args.defense_names:
        p.error(f"unknown defense(s) {', '.join(unknown)}; scenario {args.scenario} has {', '.join(known)}.")
    frs = {name: getattr(args, name) for name in [*FLAT_TRAINING, *FRS_TRAIN_FIELDS]}
    output = args.output or os.path.join(
        args.cache_dir, "backdoor_eval", f"{args.scenario}-{args.dataset.replace('/', '--')}-{args.attack}"
    )

    setup(args.threads, progress=args.progress)
    command, machine = print_header()
    begin = time.perf_counter()

    m = load_models(args, frs)
    model_seconds = time.perf_counter() - begin
    plain, tokenizer, config, max_length = m["plain"], m["tokenizer"], m["config"], m["max_length"]
    clean_texts, clean_labels, triggered_texts, triggered_labels = backdoor_test_sets(
        m["test"], config, num_examples=args.num_examples, seed=args.model_seed
    )
    sigma = frs["frs_weight_noise_sigma"] if args.weight_noise_sigma is None else args.weight_noise_sigma
    smoothing = FRSConfig(
        omega_low=args.omega_low,
        omega_high=args.omega_high,
        fuzzing_config=FuzzingConfig(
            budget=args.fuzzing_budget,
            partner_words=args.fuzzing_partner_words,
            min_kl=args.fuzzing_min_kl,
            reference_texts=m["strip_texts"][: args.reference_texts] or None,
            transplant_confidence=args.transplant_confidence,
        ),
        n=args.n,
        n0=args.n0,
        alpha=args.alpha,
        max_length=max_length,
        weight_noise_config=WeightNoiseConfig(sigma=sigma, layers=frs["frs_weight_noise_layers"]),
    )
    shared = {"frs_config": smoothing, "clean_texts": m["strip_texts"], "max_length": max_length}
    options = {"uniform-deletion": {"rate": args.uniform_rate}, "uniform-masking": {"rate": args.masking_rate}}
    built: dict[str, Defense] = {}  # ONION: one SmolLM2 for every seed (its output does not depend on the seed)

    def baseline(name: str, model):
        def build(seed: int) -> Defense:
            kwargs = {**shared, **options.get(name, {})}
            if name == "onion":
                if name not in built:
                    built[name] = build_defense(name, model, tokenizer, **kwargs)
                return built[name]
            return build_defense(name, model, tokenizer, seed=seed, **kwargs)

        return build

    defenses = {}
    for name in args.defense_names:
        if name in BASELINES:
            defenses[name] = baseline(name, plain)
        elif name == "frs-plain-trained":
            defenses[PLAIN_FRS] = baseline("frs", plain)
        elif args.scenario == "C":
            certifier = pipeline(
                "frs-certified-classification",
                model=plain,
                tokenizer=tokenizer,
                frs_config=smoothing.replace(fuzzing=True),
            )
            defenses["frs"] = lambda seed, c=certifier: PipelineFRSDefense(c, seed=seed, batch_size=args.texts_per_call)
        else:
            defenses["frs"] = baseline("frs", m["frs_model"])
    if "onion" in defenses:
        defenses["onion"](args.model_seed)  # loads the LM now: a missing package fails before the long evaluation

    report = evaluate_defenses(
        defenses,
        clean_texts,
        clean_labels,
        triggered_texts,
        triggered_labels,
        config.target_label,
        seeds=args.seeds,
        max_radius=args.max_radius,
        texts_per_call=args.texts_per_call,
        metadata={
            "command": command,
            "machine": machine,
            "scenario": args.scenario,
            "dataset": args.dataset,
            "attack": {"name": args.attack, **dataclasses.asdict(config)},
            "smoothing": smoothing.to_dict(),
            "settings": {k: v for k, v in vars(args).items() if k not in FRS_TRAIN_FIELDS},
            "frs_training": frs if args.scenario != "C" else None,
            "undefended_model": m["undefended"],
            "frs_model": m.get("frs_info"),
            "model_seconds": round(model_seconds, 1),
        },
    )
    total = time.perf_counter() - begin
    report.metadata["total_seconds"] = round(total, 1)
    undefended = m["undefended"]
    frs_info = m.get("frs_info")
    partners = "auto" if args.fuzzing_partner_words is None else args.fuzzing_partner_words
    print(
        f"\nScenario {args.scenario}, {args.dataset}, {args.attack} (target label {config.target_label}); "
        f"{len(clean_texts)} clean + {len(triggered_texts)} triggered test texts; smoothing n={args.n}, "
        f"n0={args.n0}, alpha={args.alpha}, FRS omega {args.omega_low}/{args.omega_high} "
        f"(fuzzing budget {args.fuzzing_budget}, partner words {partners}, "
        f"floor {args.fuzzing_min_kl:g}"
        + (
            f", transplant test on {args.reference_texts} references at confidence {args.transplant_confidence:g}"
            if args.reference_texts
            else ""
        )
        + "), uniform deletion "
        f"{args.uniform_rate}, masking {args.masking_rate}, weight noise sigma {sigma}"
        + (f"; FRSTrainer {frs}" if args.scenario != "C" else "; FRS through the pipeline")
    )
    print(f"undefended model (whole test split, from the cache): {json.dumps(undefended)}")
    if frs_info:
        print(f"FRSTrainer model: {frs_info['n_train']} texts, {frs_info['train_time_s']:.0f} s to train")
    print()
    print(report.to_markdown())
    paths = report.save(output, plot=not args.no_plot)
    print(f"Wrote {', '.join(paths.values())}")
    print(f"total {total / 60:.1f} min (models {model_seconds:.0f} s) | load avg at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
