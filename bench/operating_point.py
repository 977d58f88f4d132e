"""The operating point: smoothed vs plain clean accuracy, certified accuracy by radius, and the backdoor.

For each training seed, fine-tunes the packaged MiniLM on a packaged dataset's whole training split
with the plain ``Trainer`` (the undefended reference) and, for each candidate deletion rate ``omega``,
with ``FRSTrainer`` on deletion copies at that rate (``--clean-fraction``, ``--balance-labels``,
``--copies`` and ``--consistency`` set the other training knobs). Each FRS-trained model is then certified on the
same test texts with uniform deletion at its own rate (``n0 + n`` copies, ``alpha``; abstentions
count as wrong); ``--train-omega`` trains one model at that rate instead and certifies it at every candidate
rate. The script prints per seed and as the mean over seeds:

- plain CA of the undefended and of the FRS-trained model (whole test split; the undefended model's
  also on the certified texts alone);
- smoothed CA (certified at radius 0) and the abstention rate;
- CA when each abstention is answered by a plain classifier: the FRS-trained model itself on the whole
  text (what ``FRSConfig(fallback=True)`` answers), or the undefended model -- those answers carry no
  certificate;
- certified accuracy for edits anywhere (``radius``) at each radius in ``--radii``;
- with ``--attack``: both models trained on poisoned data, and the attack success rate on triggered
  test texts for the undefended model, the smoothed classifier (with its ASR floor: the same rate on
  clean non-target texts) and with abstentions answered by each plain classifier.

Models and certificates are cached under ``cache/operating_point/``: rerunning a command only
computes what is new. ``--from-results`` prints one table from several results files.

    python bench/operating_point.py --omegas 0.7 0.8 --seeds 0 1 2 --threads 1
    python bench/operating_point.py --omegas 0.7 --clean-fraction 0.5 --attack badnet --threads 1
    python bench/operating_point.py --omegas 0.8 --clean-fraction 0.5 --attack badnet --balance-labels --fuzzing
    python bench/operating_point.py --from-results bench/results/operating_point-*.json --output plot.png

Writes ``bench/results/operating_point-<dataset>.json`` (or ``--output``: command, machine, commit and
every record with its vote counts) and a plot of certified accuracy against radius (``.png`` beside it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np
from backdoor import cut_words, predict
from common import commit, print_header, setup, training_arguments
from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

from frs_hf import FRSConfig, SmoothedModelForSequenceClassification
from frs_hf.attacks import get_attack, poison_dataset, triggered_test_set
from frs_hf.data import load_packaged_dataset
from frs_hf.evaluation.training import fine_tune
from frs_hf.packaged import minilm_path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "cache" / "operating_point"
RESULTS = Path(__file__).resolve().parent / "results"


def train(args: argparse.Namespace, data, seed: int, frs: dict | None) -> Path:
    """Fine-tune (or load from the cache) one model; ``frs=None`` is the plain ``Trainer``."""
    settings = {
        "dataset": args.dataset,
        "train_size": args.train_size,
        "seed": seed,
        "max_length": args.max_length,
        "epochs": args.plain_epochs if frs is None else args.epochs,
        "learning_rate": args.plain_learning_rate if frs is None else args.learning_rate,
        "frs": frs,
    }
    if args.attack:  # only when set, so that models trained on clean data keep their cache names
        settings.update(attack=args.attack, poison_rate=args.poison_rate, target_label=args.target_label)
    if args.max_words:  # likewise
        settings.update(max_words=args.max_words)
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    path = CACHE / f"{'plain' if frs is None else 'frs'}-{digest}"
    if (path / "info.json").is_file() and not args.retrain:
        return path
    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    num_labels = data["train"].features["label"].num_classes
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=num_labels)
    start = time.perf_counter()
    trainer = fine_tune(
        model,
        tokenizer,
        data["train"],
        str(path) + ".tmp",
        frs=training_arguments(frs),
        epochs=settings["epochs"],
        learning_rate=settings["learning_rate"],
        max_length=args.max_length,
        seed=seed,
    )
    trainer.save_model(str(path))
    tokenizer.save_pretrained(str(path))
    (path / "info.json").write_text(json.dumps({**settings, "train_s": time.perf_counter() - start}, indent=1))
    shutil.rmtree(str(path) + ".tmp", ignore_errors=True)
    return path


def certify(path: Path, model, tokenizer, config: FRSConfig, texts: list[str]) -> tuple[list[dict], float]:
    """Certify ``texts`` (or read the certificates cached for this model, config and texts)."""
    key = json.dumps([path.name, config.to_dict(), texts], sort_keys=True)
    cached = CACHE / f"certificates-{hashlib.sha1(key.encode()).hexdigest()[:12]}.json"
    if cached.is_file():
        entry = json.loads(cached.read_text())
        return entry["texts"], entry["certify_s"]
    smoothed = SmoothedModelForSequenceClassification.from_model(model, tokenizer, config)
    start = time.perf_counter()
    results = smoothed.certify(texts)
    seconds = time.perf_counter() - start
    rows = [{"label": r.label, "counts": r.counts, "p_lower": r.p_lower, "radius": r.radius} for r in results]
    cached.write_text(json.dumps({"texts": rows, "certify_s": seconds}))
    return rows, seconds


def backdoor(args, path, model, tokenizer, config, triggered_texts, plain_triggered) -> dict:
    """Attack success rates on the triggered texts: the undefended model's, the smoothed classifier's (an
    abstention is not a success) and with abstentions answered by each plain classifier."""
    rows, _ = certify(path, model, tokenizer, config, triggered_texts)
    smoothed = np.array([-1 if r["label"] is None else r["label"] for r in rows])
    frs_triggered = predict(model, tokenizer, triggered_texts, args.max_length)
    target = args.target_label
    return {
        "asr_undefended": float(np.mean(plain_triggered == target)),
        "asr_smoothed": float(np.mean(smoothed == target)),
        "asr_fallback_self": float(np.mean(np.where(smoothed >= 0, smoothed, frs_triggered) == target)),
        "asr_fallback_plain": float(np.mean(np.where(smoothed >= 0, smoothed, plain_triggered) == target)),
        "triggered_abstain": float(np.mean(smoothed < 0)),
        "triggered": rows,
    }


def certified_accuracy(rows: list[dict], labels: np.ndarray, radius: int) -> float:
    """Share of texts certified with the right label at ``radius`` or more (abstentions count as wrong)."""
    return float(
        np.mean(
            [
                r["label"] == y and r["radius"] is not None and r["radius"] >= radius
                for r, y in zip(rows, labels, strict=True)
            ]
        )
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="rotten_tomatoes", choices=("rotten_tomatoes", "imdb", "bbc_news"))
    p.add_argument("--omegas", type=float, nargs="+", default=[0.8], help="Candidate deletion rates.")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="Training seeds (one model pair each).")
    p.add_argument("--epochs", type=float, default=3.0, help="FRSTrainer epochs.")
    p.add_argument("--learning-rate", type=float, default=1e-4, help="FRSTrainer learning rate.")
    p.add_argument("--clean-fraction", type=float, default=0.0, help="FRSTrainer frs_clean_fraction.")
    p.add_argument(
        "--balance-labels", action="store_true", help="FRSTrainer frs_balance_labels (inverse-frequency loss weights)."
    )
    p.add_argument(
        "--train-omega",
        type=float,
        default=None,
        help="Train at this rate and certify the one model at every --omegas rate.",
    )
    p.add_argument("--copies", type=int, default=1, help="FRSTrainer frs_copies (copies per example per step).")
    p.add_argument("--consistency", type=float, default=0.0, help="FRSTrainer frs_consistency.")
    p.add_argument("--plain-epochs", type=float, default=1.0, help="Trainer (undefended reference) epochs.")
    p.add_argument("--plain-learning-rate", type=float, default=5e-5, help="Trainer learning rate.")
    p.add_argument("--train-size", type=int, default=None, help="Seeded subset of the train split (default: all).")
    p.add_argument(
        "--attack",
        default=None,
        help="Poison both models' training data with this attack (badnet, addsent) and report the attack success "
        "rate on triggered test texts (default: clean training data).",
    )
    p.add_argument("--poison-rate", type=float, default=0.1)
    p.add_argument(
        "--max-words",
        type=int,
        default=None,
        help="Cut every text to its first N words before poisoning (long articles: the trigger stays inside "
        "max_length).",
    )
    p.add_argument(
        "--fuzzing",
        action="store_true",
        help="Certify with FRS proper: the fuzzed area deleted at --omega-high, omega outside it (training unchanged).",
    )
    p.add_argument("--omega-high", type=float, default=0.95, help="Deletion rate inside the fuzzed area.")
    p.add_argument(
        "--weight-noise",
        type=float,
        default=0.0,
        help="Biphased weight noise: sigma on the top --noise-layers blocks in training and certification.",
    )
    p.add_argument(
        "--noise-layers", type=int, default=6, help="H: top blocks (plus the head) that get noise (MiniLM has 6)."
    )
    p.add_argument("--noise-draws", type=int, default=20, help="K: weight draws at certification.")
    p.add_argument("--target-label", type=int, default=1)
    p.add_argument("--max-length", type=int, default=64, help="Token budget in training and certification.")
    p.add_argument("--num-test", type=int, default=200, help="Test texts certified per model (seeded subset).")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--n0", type=int, default=100)
    p.add_argument("--alpha", type=float, default=0.001)
    p.add_argument("--radii", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--retrain", action="store_true")
    p.add_argument(
        "--output", default=None, help="Results file (default bench/results/operating_point-<dataset>.json)."
    )
    p.add_argument(
        "--from-results",
        nargs="+",
        default=None,
        help="Results files of earlier runs: print their table together and plot it (no training or certifying).",
    )
    args = p.parse_args(argv)
    setup(args.threads)
    command, machine = print_header()
    if args.from_results:
        runs = [json.loads(Path(f).read_text()) for f in args.from_results]
        records = [r for run in runs for r in run["records"]]
        print_table(records, args.radii)
        print_backdoor_table(records)
        for run, f in zip(runs, args.from_results, strict=True):
            print(f"{f}: {run['command']} | {run['machine']} | commit {run['commit']}")
        if args.output:
            plot(records, args, Path(args.output))
        return 0

    data = cut_words(load_packaged_dataset(args.dataset), args.max_words)
    if args.train_size is not None:
        data["train"] = data["train"].shuffle(seed=0).select(range(min(args.train_size, len(data["train"]))))
    triggered_texts = []
    if args.attack:
        attack = get_attack(args.attack, poison_rate=args.poison_rate, target_label=args.target_label, seed=0)
        data["train"] = poison_dataset(data["train"], attack)
        triggered = triggered_test_set(data["test"], attack)
        chosen = np.random.default_rng(1).choice(len(triggered), min(args.num_test, len(triggered)), replace=False)
        triggered_texts = list(triggered.select(np.sort(chosen))["text"])
    test_texts, test_labels = list(data["test"]["text"]), np.asarray(data["test"]["label"])
    picked = np.sort(
        np.random.default_rng(0).choice(len(test_texts), min(args.num_test, len(test_texts)), replace=False)
    )
    texts, labels = [test_texts[i] for i in picked], test_labels[picked]
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())

    records = []
    for seed in args.seeds:
        plain = AutoModelForSequenceClassification.from_pretrained(train(args, data, seed, None)).eval()
        plain_pred = predict(plain, tokenizer, test_texts, args.max_length)
        plain_triggered = predict(plain, tokenizer, triggered_texts, args.max_length) if triggered_texts else None
        plain_ca = float((plain_pred == test_labels).mean())
        for omega in args.omegas:
            rate = args.train_omega or omega
            frs = {"frs_omega_low": rate, "frs_omega_high": rate, "frs_clean_fraction": args.clean_fraction}
            if args.balance_labels:  # only when set, so that models trained without it keep their cache names
                frs.update(frs_balance_labels=True)
            if args.copies > 1:  # likewise
                frs.update(frs_copies=args.copies, frs_consistency=args.consistency)
            if args.weight_noise:  # likewise
                frs.update(frs_weight_noise_sigma=args.weight_noise, frs_weight_noise_layers=args.noise_layers)
            model_path = train(args, data, seed, frs)
            model = AutoModelForSequenceClassification.from_pretrained(model_path).eval()
            frs_pred = predict(model, tokenizer, test_texts, args.max_length)
            frs_plain_ca = float((frs_pred == test_labels).mean())
            config = FRSConfig(
                omega_low=omega,
                omega_high=args.omega_high if args.fuzzing else omega,
                fuzzing=args.fuzzing,
                n=args.n,
                n0=args.n0,
                alpha=args.alpha,
                max_length=args.max_length,
                sequential=False,  # Cohen et al.'s fixed n0 + n, as in the results files
            )
            if args.weight_noise:  # only when set, so that earlier certificates keep their cache keys
                config = config.replace(
                    weight_noise_config={
                        "sigma": args.weight_noise,
                        "layers": args.noise_layers,
                        "draws": args.noise_draws,
                    }
                )
            rows, seconds = certify(model_path, model, tokenizer, config.replace(seed=seed), texts)
            smoothed = np.array([-1 if r["label"] is None else r["label"] for r in rows])
            record = {
                "candidate": candidate(args, omega),
                "seed": seed,
                "omega": omega,
                "plain_ca": plain_ca,
                "frs_plain_ca": frs_plain_ca,
                "plain_ca_certified_texts": float(np.mean(plain_pred[picked] == labels)),
                "smoothed_ca": certified_accuracy(rows, labels, 0),
                # An abstention answered by a plain classifier instead (no certificate for that answer).
                "fallback_self_ca": float(np.mean(np.where(smoothed >= 0, smoothed, frs_pred[picked]) == labels)),
                "fallback_plain_ca": float(np.mean(np.where(smoothed >= 0, smoothed, plain_pred[picked]) == labels)),
                "abstain": float(np.mean([r["label"] is None for r in rows])),
                "certified": {str(r): certified_accuracy(rows, labels, r) for r in args.radii},
                "certify_s": seconds,
                "texts": rows,
            }
            if triggered_texts:
                seeded = config.replace(seed=seed)
                record.update(backdoor(args, model_path, model, tokenizer, seeded, triggered_texts, plain_triggered))
                record["asr_floor"] = float(np.mean(smoothed[labels != args.target_label] == args.target_label))
            records.append(record)
            print(
                f"{record['candidate']} seed {seed}: plain CA {plain_ca:.3f} | FRS-trained plain {frs_plain_ca:.3f} | "
                f"smoothed CA {record['smoothed_ca']:.3f} | abstain {record['abstain']:.3f} | "
                f"fallback CA {record['fallback_self_ca']:.3f} / {record['fallback_plain_ca']:.3f} | "
                + " | ".join(f"r>={r} {v:.3f}" for r, v in record["certified"].items())
                + f" | {seconds:.0f} s",
                flush=True,
            )

    print_table(records, args.radii)
    print_backdoor_table(records)
    output = Path(args.output or RESULTS / f"operating_point-{args.dataset}.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("output", "retrain", "threads")}
    payload = {"command": command, "machine": machine, "commit": commit(), "settings": settings, "records": records}
    output.write_text(json.dumps(payload, indent=1) + "\n")
    plot(records, args, output.with_suffix(".png"))
    print(f"\nwrote {output} and {output.with_suffix('.png')}")
    return 0


def candidate(args: argparse.Namespace, omega: float) -> str:
    """The name of a training-and-smoothing recipe: its rate and the training options that differ from the default."""
    name = f"ω={omega:g}, {args.epochs:g} ep" + (f", {args.attack} {args.poison_rate:g}" if args.attack else "")
    if args.clean_fraction:
        name += f", whole {args.clean_fraction:g}"
    if args.train_omega:
        name += f", trained at {args.train_omega:g}"
    if args.balance_labels:
        name += ", balanced labels"
    if args.copies > 1:
        name += f", {args.copies} copies, consistency {args.consistency:g}"
    if args.weight_noise:
        name += f", weight noise σ={args.weight_noise:g} H={args.noise_layers} K={args.noise_draws}"
    if args.fuzzing:
        name += f", fuzzing (area at {args.omega_high:g})"
    return name


COLUMNS = {
    "plain_ca": "plain CA (undefended)",
    "frs_plain_ca": "plain CA (FRS-trained)",
    "plain_ca_certified_texts": "plain CA (undefended), certified texts",
    "smoothed_ca": "smoothed CA",
    "abstain": "abstain",
    "fallback_self_ca": "CA, fallback=True",
    "fallback_plain_ca": "CA, abstain → undefended model",
}


def print_table(records: list[dict], radii: list[int]) -> None:
    """Per seed and mean over seeds, one block of rows per candidate (percent)."""
    header = ["candidate", "seed", *COLUMNS.values(), *(f"cert. acc. r≥{r}" for r in radii)]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for name in dict.fromkeys(r["candidate"] for r in records):
        mine = [r for r in records if r["candidate"] == name]
        for row in [*mine, None] if len(mine) > 1 else mine:
            group = mine if row is None else [row]
            values = [np.mean([g[k] for g in group]) for k in COLUMNS]
            values += [np.mean([g["certified"][str(k)] for g in group]) for k in radii]
            seed = "mean" if row is None else row["seed"]
            print(f"| {name} | {seed} | " + " | ".join(f"{100 * v:.1f}" for v in values) + " |")


BACKDOOR = {
    "asr_undefended": "ASR undefended",
    "asr_smoothed": "ASR smoothed",
    "asr_floor": "ASR floor (smoothed)",
    "triggered_abstain": "abstain (triggered)",
    "asr_fallback_self": "ASR, fallback=True",
    "asr_fallback_plain": "ASR, abstain → undefended model",
}


def print_backdoor_table(records: list[dict]) -> None:
    records = [r for r in records if "asr_smoothed" in r]
    if not records:
        return
    print("\n| candidate | seed | " + " | ".join(BACKDOOR.values()) + " |\n|" + "---|" * (len(BACKDOOR) + 2))
    for name in dict.fromkeys(r["candidate"] for r in records):
        mine = [r for r in records if r["candidate"] == name]
        for row in [*mine, None] if len(mine) > 1 else mine:
            group = mine if row is None else [row]
            values = [np.mean([g[k] for g in group]) for k in BACKDOOR]
            seed = "mean" if row is None else row["seed"]
            print(f"| {name} | {seed} | " + " | ".join(f"{100 * v:.1f}" for v in values) + " |")


def plot(records: list[dict], args: argparse.Namespace, path: Path) -> None:
    """Certified accuracy against radius, one curve per candidate (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    radii = [0, *args.radii]
    for name in dict.fromkeys(r["candidate"] for r in records):
        mine = [r for r in records if r["candidate"] == name]
        curve = [np.mean([m["smoothed_ca"] if k == 0 else m["certified"][str(k)] for m in mine]) for k in radii]
        ax.plot(radii, [100 * c for c in curve], marker="o", label=name)
    plain = np.mean([r["plain_ca"] for r in records])
    ax.axhline(100 * plain, color="grey", linestyle="--", label="plain model (no certificate)")
    ax.set_xlabel("radius r (words inserted, deleted or substituted anywhere)")
    ax.set_ylabel("certified accuracy (%)")
    ax.set_title(f"{args.dataset}: certified accuracy against radius (mean over seeds)", fontsize=10)
    ax.set_xticks(radii)
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    raise SystemExit(main())
