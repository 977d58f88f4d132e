"""Does training with ``FRSTrainer`` pay off at certification time?

Fine-tunes the packaged MiniLM on Rotten Tomatoes twice from the same start and data — once with
the plain ``Trainer``, once with ``FRSTrainer`` (deletion at the certification rate, weight noise on
the top layer, clipped and noised top-layer updates) — then, on the same test sentences:

- clean accuracy of each model as a plain classifier (the whole test split);
- each model wrapped in the *same* smoothing (uniform deletion at ``--omega``, the same weight noise
  at inference): clean accuracy of the smoothed vote, abstention rate, and certified accuracy at
  radius 0-3 (correct, not abstained, ``radius >= r``; ``radius`` counts edits anywhere).

Models are cached under ``cache/training_effect/`` (delete it or pass ``--retrain`` to train again).

    python bench/training_effect.py
    python bench/training_effect.py --num-test 100 --n 200      # quicker
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np
from backdoor import predict
from common import print_header, setup, training_arguments
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    set_seed,
)

from frs_hf import FRSConfig, SmoothedModelForSequenceClassification
from frs_hf.data import load_packaged_dataset
from frs_hf.evaluation.training import fine_tune
from frs_hf.packaged import minilm_path

CACHE = Path(__file__).resolve().parent.parent / "cache" / "training_effect"
RADII = (0, 1, 2, 3)


def train_model(kind: str, args: argparse.Namespace, tokenizer, data) -> tuple[Path, float]:
    settings = {k: getattr(args, k) for k in ("epochs", "learning_rate", "seed", "sigma", "omega")}
    if kind == "frs_trainer":
        settings.update({k: getattr(args, k) for k in ("update_clip", "update_noise", "random_area")})
        if args.clean_fraction:  # only in the key when set: older cached models keep their names
            settings["clean_fraction"] = args.clean_fraction
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    path = CACHE / f"{kind}-{len(data)}-{digest}"
    if (path / "info.json").is_file() and not args.retrain:
        return path, json.loads((path / "info.json").read_text())["train_time_s"]
    set_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=2)
    frs = None
    if kind == "frs_trainer":
        frs = dict(
            frs_omega_low=args.omega,
            frs_omega_high=args.omega_high or args.omega,
            frs_random_area=args.random_area,
            frs_weight_noise_sigma=args.sigma,
            frs_update_clip=args.update_clip,
            frs_update_noise=args.update_noise,
            frs_clean_fraction=args.clean_fraction,
        )
    start = time.perf_counter()
    trainer = fine_tune(
        model,
        tokenizer,
        data,
        str(path) + ".tmp",
        frs=training_arguments(frs),
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        max_length=64,
        seed=args.seed,
    )
    seconds = time.perf_counter() - start
    trainer.save_model(str(path))
    tokenizer.save_pretrained(str(path))
    (path / "info.json").write_text(json.dumps({"train_time_s": seconds, **settings}))
    shutil.rmtree(str(path) + ".tmp", ignore_errors=True)  # the Trainer's scratch folder
    return path, seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--omega", type=float, default=0.8, help="Deletion rate, in training and at certification.")
    p.add_argument("--sigma", type=float, default=0.01, help="Weight noise std (top layer), both phases.")
    p.add_argument("--update-clip", type=float, default=1.0)
    p.add_argument("--update-noise", type=float, default=0.05)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--train-size", type=int, default=None, help="Seeded subset of the train split (default: all).")
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--num-test", type=int, default=200, help="Test sentences certified per model.")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--n0", type=int, default=50)
    p.add_argument("--alpha", type=float, default=0.001)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--random-area", type=float, default=0.0, help="FRSTrainer frs_random_area (0: uniform deletion).")
    p.add_argument("--omega-high", type=float, default=None, help="FRSTrainer rate inside the random area.")
    p.add_argument(
        "--clean-fraction", type=float, default=0.0, help="FRSTrainer frs_clean_fraction (examples left whole)."
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's).")
    p.add_argument("--retrain", action="store_true")
    args = p.parse_args(argv)
    setup(args.threads)
    print_header()

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    data = load_packaged_dataset("rotten_tomatoes")
    train = data["train"]
    if args.train_size is not None:
        train = train.shuffle(seed=args.seed).select(range(min(args.train_size, len(train))))
    test_texts, test_labels = list(data["test"]["text"]), np.array(list(data["test"]["label"]))
    rng = np.random.default_rng(args.seed)
    picked = np.sort(rng.choice(len(test_texts), size=min(args.num_test, len(test_texts)), replace=False))
    smoothing = FRSConfig(
        omega_low=args.omega,
        omega_high=args.omega,
        weight_noise_config={"sigma": args.sigma, "draws": 8 if args.sigma > 0 else 1},
        n=args.n,
        n0=args.n0,
        alpha=args.alpha,
        max_length=64,
        seed=args.seed,
    )
    print(f"smoothing: {smoothing}")
    rows = []
    for kind in ("trainer", "frs_trainer"):
        path, train_s = train_model(kind, args, tokenizer, train)
        model = AutoModelForSequenceClassification.from_pretrained(path).eval()
        clean = float((predict(model, tokenizer, test_texts, 64) == test_labels).mean())
        smoothed = SmoothedModelForSequenceClassification.from_model(model, tokenizer, smoothing)
        start = time.perf_counter()
        results = smoothed.certify([test_texts[i] for i in picked])
        certify_s = time.perf_counter() - start
        correct = np.array(
            [not r.abstained and r.label == test_labels[i] for r, i in zip(results, picked, strict=True)]
        )
        radius = np.array([-1 if r.radius is None else r.radius for r in results])
        row = {
            "training": "Trainer" if kind == "trainer" else "FRSTrainer",
            "clean acc (plain, full test)": f"{clean:.3f}",
            "smoothed acc": f"{correct.mean():.3f}",
            "abstain": f"{np.mean([r.abstained for r in results]):.3f}",
            **{f"cert acc r>={r}": f"{(correct & (radius >= r)).mean():.3f}" for r in RADII},
            "train s": f"{train_s:.0f}",
            "certify s": f"{certify_s:.0f}",
        }
        rows.append(row)
        print(" | ".join(row.values()), flush=True)
    print(f"\n{len(picked)} test sentences certified per model, {len(test_texts)} for the plain clean accuracy.")
    print("| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(row.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
