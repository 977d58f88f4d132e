"""Where does the fuzzing budget go on the triggered texts the search misses? A diagnostic, not a table.

For each triggered text (the same texts and backdoored MiniLM as ``bench/fuzzing.py``, MCTS with
the default ``FRSConfig`` but ``--budget``), prints whether the area captured every trigger word
and, for a miss, its cause (``miss_cause``: floor / inert / search); for a search failure, every
stage of the search with the forwards it spent: the tree search's best spans, the shrinking
(``restore_chunks``, ``reduce_deletion_set``) with the words it kept, and the dominance tests.

    python bench/fuzzing_trace.py --datasets imdb --attacks badnet --num-test 30 --train-size 3000 --epochs 2 \\
        --learning-rate 1e-4 --poison-rate 0.2 --threads 1
    python bench/fuzzing_trace.py --attacks badnet --texts 24 --min-kl 0.99 --partner-words   # one sentence

It prints one trace per text: a diagnostic, not a table of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools

import numpy as np
from backdoor import DEFAULT_MAX_LENGTH, backdoored_model
from common import print_header, setup
from fuzzing import add_model_arguments, miss_cause, model_settings

import frs_hf.fuzzing as fuzzing
from frs_hf import FRSConfig, FuzzingConfig, SmoothedModelForSequenceClassification, segment
from frs_hf.attacks import get_attack, triggered_test_set
from frs_hf.data import load_packaged_dataset
from frs_hf.fuzzing import area_mask

STAGES = ("mcts_search", "restore_chunks", "reduce_deletion_set", "dominant_words", "_with_partners")


def traced(log: list[str]) -> None:
    """Wrap the search's stages in ``frs_hf.fuzzing`` so that each call appends a line to ``log``."""
    for name in STAGES:
        stage = getattr(fuzzing, name)

        @functools.wraps(stage)
        def wrapper(mutator, oracle, *args, _stage=stage, _name=name, **kwargs):
            before = oracle.num_forwards
            out = _stage(mutator, oracle, *args, **kwargs)
            shown = sorted(out, key=lambda s: -s[2])[:4] if _name == "mcts_search" else out
            given = [f"{len(a)} words from {a[0]}" if isinstance(a, range) else a for a in args[:1]]
            spent = f"forwards {before} -> {oracle.num_forwards}"
            log.append(f"  {_name}({', '.join(map(str, given))}) -> {shown}  {spent}")
            return out

        setattr(fuzzing, name, wrapper)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs=1, default=["rotten_tomatoes"], choices=["rotten_tomatoes", "imdb"])
    parser.add_argument("--attacks", nargs=1, default=["badnet"])
    parser.add_argument("--num-test", type=int, default=200)
    parser.add_argument("--texts", type=int, nargs="*", help="Only these triggered texts (indices).")
    parser.add_argument("--budget", type=int, default=FuzzingConfig.budget)
    parser.add_argument("--min-kl", type=float, default=FuzzingConfig.min_kl)
    parser.add_argument("--partner-words", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    add_model_arguments(parser)
    args = parser.parse_args(argv)
    setup(args.threads)
    print_header()
    (dataset,), (attack,) = args.datasets, args.attacks
    model, tokenizer, _ = backdoored_model(dataset, attack, **model_settings(args))
    max_length = DEFAULT_MAX_LENGTH[dataset]
    triggered = triggered_test_set(load_packaged_dataset(dataset)["test"], get_attack(attack, seed=args.seed))
    triggered = triggered.select(range(args.num_test))
    config = FRSConfig(
        fuzzing_config=FuzzingConfig(budget=args.budget, min_kl=args.min_kl, partner_words=args.partner_words),
        max_length=max_length,
        seed=args.seed,
    )
    smoothed = SmoothedModelForSequenceClassification.from_model(model, tokenizer, config)
    log: list[str] = []
    traced(log)
    units = segment(tokenizer, list(triggered["text"]))
    for i in args.texts if args.texts else range(len(units)):
        positions = triggered[i]["trigger_positions"]
        log.clear()
        found = smoothed.find_area(units[i], config, index=i)
        inside = area_mask(found.area, units[i].num_units)
        if inside[positions].all():
            print(f"{i}: captured ({found.num_forwards} forwards)", flush=True)
            continue
        cause = miss_cause(smoothed, config, units[i], positions, np.flatnonzero(inside), max_length)
        print(
            f"{i}: MISS ({cause}) -- {units[i].num_units} words, triggers at {positions}, area {found.area}, "
            f"{found.num_forwards} forwards",
            flush=True,
        )
        if cause == "search":
            print("\n".join(log), flush=True)


if __name__ == "__main__":
    main()
