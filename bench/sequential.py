"""Sequential certification against Cohen et al.'s fixed n: model forwards, certified accuracy, memory.

Certifies the same test texts with one checkpoint three ways, in one process and with one seed:

- **fixed**: ``n0`` selection copies, then ``n`` estimation copies (Cohen et al.);
- **sequential**: looks after 100, 200, 400 ... copies up to ``n``, each look with its own share of
  ``alpha``, stopping once the certificate is decided (``FRSConfig(sequential=True)``);
- **target r**: sequential, stopping as soon as ``radius >= r`` is proven or out of reach;
- with ``--bf16``, sequential again under bfloat16 autocast (its time against sequential's is the bf16 ratio).

and prints, per way: certified accuracy at each radius, the abstention rate, the copies drawn and the
model forwards (distinct copies) per text -- overall, on texts that end certified and on texts that
end in abstention -- the fuzzing forwards (with ``--fuzzing``), the wall time and each ratio to fixed.

``--simulate`` instead replays the stopping rule without a model: every text of an operating-point results
file, its measured vote share taken as the truth, is certified again by simulation at several ``futility``
levels (how early a text that cannot certify more stops), with the first look at 50 copies and with up to
1.5 n copies, next to fixed ``n``.

``--memory`` instead measures peak RSS of certifying one long text (``--memory-words`` words) at
n = 1,000 and n = 100,000, each in a fresh process, with a tiny BERT built from a config (the engine's
memory does not depend on the model; a real model would take hours for 100,000 long copies here).

    python bench/sequential.py --model cache/operating_point/frs-5c469dab55 --omega 0.8 --threads 1
    python bench/sequential.py --memory --threads 1
    python bench/sequential.py --simulate bench/results/operating_point-rotten_tomatoes.json --omega 0.8

Writes ``bench/results/sequential-<dataset>.json`` (or ``--output``) with the command, machine and commit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import commit, print_header, setup
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from frs_hf import FRSConfig, FuzzingConfig, SmoothedModelForSequenceClassification, segment
from frs_hf.data import load_packaged_dataset

RESULTS = Path(__file__).resolve().parent / "results"


def measure(smoothed, texts: list[str], labels: np.ndarray, config: FRSConfig, radii: list[int]) -> dict:
    start = time.perf_counter()
    results = smoothed.certify(texts, **config.to_dict())
    seconds = time.perf_counter() - start
    certified = np.array([not r.abstained for r in results])
    correct = np.array([r.label == y for r, y in zip(results, labels, strict=True)])
    radius = np.array([-1 if r.radius is None else r.radius for r in results])
    forwards = np.array([r.num_forwards for r in results])
    copies = np.array([r.num_copies for r in results])

    def mean(values, where):
        return float(values[where].mean()) if where.any() else None

    return {
        "certified_accuracy": {str(r): float(np.mean(correct & (radius >= r))) for r in [0, *radii]},
        "abstain": float(np.mean(~certified)),
        "copies": float(copies.mean()),
        "forwards": float(forwards.mean()),
        "forwards_certified": mean(forwards, certified),
        "forwards_abstained": mean(forwards, ~certified),
        "copies_certified": mean(copies, certified),
        "copies_abstained": mean(copies, ~certified),
        "fuzzing_forwards": float(np.mean([r.fuzzing_forwards for r in results])),
        "seconds": seconds,
        "radius": radius.tolist(),
        "labels": [r.label for r in results],
    }


def certify_runs(args: argparse.Namespace) -> dict:
    data = load_packaged_dataset(args.dataset)
    test_texts, test_labels = list(data["test"]["text"]), np.asarray(data["test"]["label"])
    picked = np.sort(
        np.random.default_rng(0).choice(len(test_texts), min(args.num_test, len(test_texts)), replace=False)
    )
    texts, labels = [test_texts[i] for i in picked], test_labels[picked]
    model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    base = FRSConfig(
        omega_low=args.omega,
        omega_high=args.omega_high if args.fuzzing else args.omega,
        fuzzing=args.fuzzing,
        fuzzing_config=FuzzingConfig(method=args.fuzzing_method),
        n=args.n,
        n0=args.n0,
        alpha=args.alpha,
        max_length=args.max_length,
        seed=args.seed,
        sequential=False,
    )
    smoothed = SmoothedModelForSequenceClassification.from_model(model, tokenizer, base)
    ways = {"fixed": base} if not args.no_fixed else {}
    ways["sequential"] = base.replace(sequential=True, sequential_first=args.first)
    for r in args.targets:
        ways[f"target {r}"] = base.replace(sequential=True, sequential_first=args.first, target_radius=r)
    if args.bf16:
        ways["sequential, bf16 autocast"] = ways["sequential"].replace(autocast_dtype="bfloat16")
    runs = {}
    for name, config in ways.items():
        runs[name] = measure(smoothed, texts, labels, config, args.radii)
        print(f"{name}: done in {runs[name]['seconds']:.0f} s", flush=True)
    print_table(runs, args.radii)
    out = {"texts": len(texts), "runs": runs}
    if args.fuzzing:
        out["fuzzing_cache"] = fuzzing_cache(smoothed, texts, base)
    return out


def fuzzing_cache(smoothed, texts: list[str], config: FRSConfig) -> dict:
    """What the search's cache saves: mutations answered against model forwards, per text (one search each)."""
    units = segment(smoothed.tokenizer, texts)
    found = [smoothed.find_area(u, config, index=i) for i, u in enumerate(units)]
    queries, forwards = np.mean([f.num_queries for f in found]), np.mean([f.num_forwards for f in found])
    print(
        f"fuzzing ({config.fuzzing_config.method}): {queries:.1f} mutations answered per text, "
        f"{forwards:.1f} model forwards"
    )
    return {"queries_per_text": float(queries), "forwards_per_text": float(forwards)}


def ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as a factor, or n/a when either is missing (no fixed run, no abstention)."""
    return f"{a / b:.2f}x" if a and b else "n/a"


def print_table(runs: dict, radii: list[int]) -> None:
    fixed = runs.get("fixed", {})
    header = [
        "way",
        *(f"cert. acc. r≥{r}" for r in [0, *radii]),
        "abstain",
        "copies / text",
        "forwards / text",
        "forwards / certified text",
        "forwards / abstained text",
        "fuzzing forwards / text",
        "time (s)",
        "fewer forwards than fixed (all / certified / abstained)",
    ]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for name, run in runs.items():
        cells = [f"{100 * v:.1f}" for v in run["certified_accuracy"].values()]
        cells += [f"{100 * run['abstain']:.1f}", f"{run['copies']:.0f}", f"{run['forwards']:.0f}"]
        cells += [
            f"{v:.0f}" if v is not None else "n/a" for v in (run["forwards_certified"], run["forwards_abstained"])
        ]
        cells += [f"{run['fuzzing_forwards']:.0f}", f"{run['seconds']:.0f}"]
        cells.append(
            " / ".join(ratio(fixed.get(k), run[k]) for k in ("forwards", "forwards_certified", "forwards_abstained"))
        )
        print(f"| {name} | " + " | ".join(cells) + " |")


def simulate_futility(
    path: str, omega: float, levels: list[float], radii: list[int], repeats: int = 3, n: int = 1000
) -> dict:
    """The stopping rule's trade-off without a model: each text of an operating-point results file (its vote
    share at ``omega``, from ``n`` copies) is taken as the truth and certified again by simulation, fixed
    ``n0 + n`` against sequential at each ``futility`` level, with the first look at 50 instead of 100, and with
    up to 1.5 ``n`` copies. Prints texts certified at r >= 0 and each of ``radii``, and copies per text."""
    from frs_hf import certify as stats

    records = json.loads(Path(path).read_text())["records"]
    shares = [
        np.asarray(t["counts"]) / sum(t["counts"])
        for r in records
        if abs(r["omega"] - omega) < 1e-9
        for t in r["texts"]
    ]
    rng, alpha, rows = np.random.default_rng(0), 0.001, {}
    ways = {"fixed": None}
    ways.update({f"sequential, futility {level:g}": (level, 100, n) for level in levels})
    ways[f"sequential, futility {stats.FUTILITY:g}, first look 50"] = (stats.FUTILITY, 50, n)
    ways[f"sequential, futility {stats.FUTILITY:g}, up to n = {3 * n // 2:,}"] = (stats.FUTILITY, 100, 3 * n // 2)

    for name, way in ways.items():
        certified, copies = [], []
        for p in shares:
            for _ in range(repeats):
                if way is None:  # Cohen et al.: n0 = 100 selection copies, then n
                    selection, estimation = rng.multinomial(100, p), rng.multinomial(n, p)
                    cert, used = stats.certify_from_counts(selection, estimation, alpha, omega), 100 + n
                else:
                    level, first, most = way
                    looks, counts, cert, used = stats.look_schedule(first, most), np.zeros(len(p), np.int64), None, 0
                    for look, total in enumerate(looks):
                        counts += rng.multinomial(total - used, p)
                        used = total
                        cert, stop = stats.sequential_look(counts, look, looks, alpha, omega, best=cert, futility=level)
                        if stop:
                            break
                certified.append(-1 if cert.label is None else cert.radius)
                copies.append(used)
        certified, copies = np.array(certified), np.array(copies)
        rows[name] = {
            "certified": {str(r): float(np.mean(certified >= r)) for r in (0, *radii)},
            "copies": float(copies.mean()),
            "copies_abstained": float(copies[certified < 0].mean()) if (certified < 0).any() else None,
        }
        cells = " / ".join(f"{100 * v:.1f}" for v in rows[name]["certified"].values())
        abstained = rows[name]["copies_abstained"]
        print(
            f"{name}: certified r>=0/{'/'.join(map(str, radii))} {cells} %, copies {copies.mean():.0f}, "
            f"on abstentions {abstained or float('nan'):.0f}"
        )
    return {"texts": len(shares), "omega": omega, "repeats": repeats, "rows": rows}


MEMORY_CHILD = """
import resource, sys, time
import torch
torch.set_num_threads(1)
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification
from frs_hf import FRSConfig, FuzzingConfig, SmoothedModelForSequenceClassification
from frs_hf.packaged import minilm_path
n, words, max_length = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
tokenizer = AutoTokenizer.from_pretrained(minilm_path())
torch.manual_seed(0)
config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=64, max_position_embeddings=512, num_labels=2)
model = BertForSequenceClassification(config).eval()
text = " ".join(["the film is long, slow and oddly moving"] * (words // 8))
smoothed = SmoothedModelForSequenceClassification.from_model(model, tokenizer, FRSConfig(seed=0))
smoothed.certify("warm up", n=10, n0=1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
result = smoothed.certify(text, n=n, n0=100, omega_low=0.5, max_length=max_length)
seconds = time.perf_counter() - start
print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, seconds, result.num_forwards)
"""


def memory_runs(args: argparse.Namespace) -> dict:
    rows = {}
    for n in (1_000, 100_000):
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, str(n), str(args.memory_words), str(args.max_length or 512)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        before, peak, seconds, forwards = int(out[0]), int(out[1]), float(out[2]), int(out[3])
        rows[str(n)] = {
            "rss_before_mb": before / 1024,
            "peak_rss_mb": peak / 1024,
            "seconds": seconds,
            "forwards": forwards,
        }
        print(
            f"n = {n:,}: peak RSS {peak / 1024:.0f} MB (before certify {before / 1024:.0f} MB), "
            f"{forwards:,} forwards in {seconds:.0f} s",
            flush=True,
        )
    growth = rows["100000"]["peak_rss_mb"] / rows["1000"]["peak_rss_mb"]
    print(f"peak RSS at n = 100,000 / at n = 1,000: {growth:.3f} (goal <= 1.10)")
    return {"words": args.memory_words, "rows": rows, "growth": growth}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="A sequence-classification checkpoint folder.")
    p.add_argument("--dataset", default="rotten_tomatoes", choices=("rotten_tomatoes", "imdb", "bbc_news"))
    p.add_argument("--omega", type=float, default=0.8, help="Deletion rate (omega_low; everywhere without fuzzing).")
    p.add_argument("--fuzzing", action="store_true", help="Search each text's area and delete it at --omega-high.")
    p.add_argument("--omega-high", type=float, default=0.95)
    p.add_argument("--fuzzing-method", default="mcts", choices=("mcts", "occlusion", "random"))
    p.add_argument("--no-fixed", action="store_true", help="Skip the fixed-n run (e.g. to count fuzzing forwards).")
    p.add_argument("--bf16", action="store_true", help="Also run sequential under bfloat16 autocast.")
    p.add_argument("--num-test", type=int, default=200)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--n0", type=int, default=100)
    p.add_argument("--first", type=int, default=100, help="Copies at the first sequential look.")
    p.add_argument("--alpha", type=float, default=0.001)
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--radii", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--targets", type=int, nargs="*", default=[1], help="Radii for the target-radius runs.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--simulate", help="An operating_point results file: simulate the stopping rule instead.")
    p.add_argument("--futility", type=float, nargs="+", default=[0.1, 0.25, 0.5], help="Levels for --simulate.")
    p.add_argument("--memory", action="store_true", help="Measure peak RSS at n = 1,000 and 100,000 instead.")
    p.add_argument("--memory-words", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--output", default=None)
    args = p.parse_args(argv)
    setup(args.threads)
    command, machine = print_header()
    if args.memory:
        payload, default = memory_runs(args), RESULTS / "sequential-memory.json"
    elif args.simulate:
        payload = simulate_futility(args.simulate, args.omega, args.futility, args.radii)
        default = RESULTS / "sequential-futility.json"
    else:
        if not args.model:
            p.error("--model is required (a checkpoint folder), unless --memory or --simulate")
        payload, default = certify_runs(args), RESULTS / f"sequential-{args.dataset}.json"
    settings = {k: v for k, v in vars(args).items() if k not in ("output", "threads")}
    output = Path(args.output or default)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {"command": command, "machine": machine, "commit": commit(), "settings": settings, **payload}, indent=1
        )
        + "\n"
    )
    print(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
