"""The drop-in swap: what replacing ``Trainer`` by ``FRSTrainer`` costs in *plain* accuracy.

Fine-tunes the packaged MiniLM on the first ``--train-size`` Rotten Tomatoes training sentences with one recipe
(`frs_hf.evaluation.training.fine_tune` at the defaults of transformers' `TrainingArguments`: 1 epoch, lr 5e-5,
batch 8) several ways per seed: the plain ``Trainer``, ``FRSTrainer`` at its defaults, ``FRSTrainer`` with each
``--clean-fractions`` value (whole texts mixed in) and with each ``--frs`` set of `FRSTrainingArguments`. Prints
the plain accuracy of each model on the whole test split, per seed and as the mean over seeds, and the
difference to ``Trainer``.

    python bench/drop_in.py --seeds 0 1 2 --threads 1
    python bench/drop_in.py --clean-fractions --frs '{"frs_config": {"omega_low": 0.8}, "frs_clean_fraction": 0.5}'

Writes ``bench/results/drop_in.json`` (or ``--output``): command, machine, commit and every accuracy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from backdoor import predict
from common import commit, print_header, setup
from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

from frs_hf.data import load_packaged_dataset
from frs_hf.evaluation.training import fine_tune
from frs_hf.packaged import minilm_path

RESULTS = Path(__file__).resolve().parent / "results"


def accuracy(args: argparse.Namespace, data, seed: int, frs: dict | None) -> float:
    """Plain test accuracy of MiniLM fine-tuned with ``Trainer`` (``frs=None``) or ``FRSTrainer(**frs)``."""
    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=2)
    with tempfile.TemporaryDirectory() as scratch:
        fine_tune(
            model,
            tokenizer,
            data["train"],
            scratch,
            frs=frs,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            max_length=args.max_length,
            seed=seed,
        )
    predicted = predict(model.eval(), tokenizer, list(data["test"]["text"]), args.max_length)
    return float((predicted == np.asarray(data["test"]["label"])).mean())


def print_table(records: list[dict]) -> None:
    """Plain test accuracy per seed, the mean, and the mean difference to ``Trainer`` on the same seed (percent)."""
    seeds = list(dict.fromkeys(r["seed"] for r in records))
    plain = {r["seed"]: r["accuracy"] for r in records if r["training"] == "Trainer"}
    header = ["training", *(f"seed {s}" for s in seeds), "mean", "vs Trainer"]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for name in dict.fromkeys(r["training"] for r in records):
        mine = [r for r in records if r["training"] == name]
        delta = np.mean([r["accuracy"] - plain[r["seed"]] for r in mine])
        cells = " | ".join(f"{100 * r['accuracy']:.1f}" for r in mine)
        print(f"| {name} | {cells} | {100 * np.mean([r['accuracy'] for r in mine]):.1f} | {100 * delta:+.1f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train-size", type=int, default=2000, help="First N training sentences.")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--clean-fractions", type=float, nargs="*", default=[0.5], help="frs_clean_fraction values.")
    p.add_argument(
        "--frs",
        type=json.loads,
        nargs="*",
        default=[],
        help="More FRSTrainer ways, each a JSON object of FRSTrainingArguments, e.g. '{\"frs_clean_fraction\": 0.5}'.",
    )
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--output", default=str(RESULTS / "drop_in.json"))
    args = p.parse_args(argv)
    setup(args.threads)
    command, machine = print_header()
    data = load_packaged_dataset("rotten_tomatoes")
    data["train"] = data["train"].select(range(min(args.train_size, len(data["train"]))))

    ways = {"Trainer": None, "FRSTrainer (defaults)": {}}
    ways.update({f"FRSTrainer, frs_clean_fraction={f:g}": {"frs_clean_fraction": f} for f in args.clean_fractions})
    ways.update({"FRSTrainer, " + ", ".join(f"{k}={json.dumps(v)}" for k, v in frs.items()): frs for frs in args.frs})
    records = []
    for seed in args.seeds:
        for name, frs in ways.items():
            records.append({"training": name, "seed": seed, "accuracy": accuracy(args, data, seed, frs)})
            print(f"seed {seed} | {name}: {records[-1]['accuracy']:.4f}", flush=True)

    print_table(records)
    payload = {"command": command, "machine": machine, "commit": commit(), "settings": vars(args), "records": records}
    Path(args.output).write_text(json.dumps(payload, indent=1) + "\n")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
