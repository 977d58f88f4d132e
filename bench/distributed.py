"""Throughput of ``certify_dataset`` on 2 processes against 1, same examples, same machine.

Launches ``torchrun --nproc_per_node P`` (the CPU stand-in for ``accelerate launch``) for P = 1
and P = 2 in alternating rounds; the cores are shared fairly (``OMP_NUM_THREADS`` = cores / P, so
both runs use every core). Each worker certifies the same Rotten Tomatoes test sentences with the
packaged MiniLM; the time is taken between two barriers around ``certify_dataset`` (model loading
excluded). Goal: 2 processes >= 1.6x the throughput of 1. The script also checks that both runs
produced identical results. ``--sequential`` certifies with sequential looks (``FRSConfig(sequential=True)``)
instead of a fixed ``n``: the throughput table of docs/benchmarks.md runs both.

    python bench/distributed.py
    python bench/distributed.py --num-examples 64 --n 500 --rounds 2
    python bench/distributed.py --model MODEL --n 1000 --n0 100 --sequential --output bench/results/x.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.6


def worker(args: argparse.Namespace) -> None:
    import torch
    from accelerate import PartialState
    from common import setup

    from frs_hf import FRSConfig, SmoothedModelForSequenceClassification
    from frs_hf.data import load_packaged_dataset
    from frs_hf.evaluation import certify_dataset
    from frs_hf.packaged import minilm_path

    setup()
    state = PartialState(cpu=not torch.cuda.is_available())
    config = FRSConfig(
        omega_low=args.omega_low, n0=args.n0, n=args.n, max_length=64, seed=0, sequential=args.sequential
    )
    model = args.model or minilm_path()
    smoothed = SmoothedModelForSequenceClassification.from_pretrained(
        model, config, **({} if args.model else {"num_labels": 2})
    )
    test = load_packaged_dataset("rotten_tomatoes")["test"].select(range(args.num_examples))
    state.wait_for_everyone()
    start = time.perf_counter()
    report = certify_dataset(smoothed, test, texts_per_call=args.texts_per_call)
    state.wait_for_everyone()
    seconds = time.perf_counter() - start
    if state.is_main_process:
        Path(args.out).write_text(
            json.dumps(
                {"seconds": seconds, "threads": torch.get_num_threads(), "counts": [r.counts for r in report.results]}
            )
        )
    state.destroy_process_group()  # left to the interpreter's exit, gloo's threads can abort a rank


def launch(processes: int, threads: int, args: argparse.Namespace, out: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    # One positional JSON argument: torchrun's own parser would take "--n" for one of its options.
    job = {
        "out": out,
        "num_examples": args.num_examples,
        "n": args.n,
        "n0": args.n0,
        "texts_per_call": args.texts_per_call,
        "model": args.model,
        "omega_low": args.omega_low,
        "sequential": args.sequential,
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(processes),
        __file__,
        "worker",
        json.dumps(job),
    ]
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(Path(out).read_text())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num-examples", type=int, default=48)
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--n0", type=int, default=30)
    p.add_argument("--texts-per-call", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--model", default=None, help="A fine-tuned classifier (default: packaged MiniLM, untrained head).")
    p.add_argument("--omega-low", type=float, default=0.7)
    p.add_argument("--sequential", action="store_true", help="Sequential looks instead of a fixed n.")
    p.add_argument("--output", default=None, help="Also save the figures as JSON here.")
    if sys.argv[1:2] == ["worker"]:
        worker(argparse.Namespace(**json.loads(sys.argv[2])))
        return 0
    args = p.parse_args()
    from common import print_header  # imports torch, which the launcher itself does not need

    command, machine = print_header()
    cores = os.cpu_count() or 1
    # (processes, threads each): one core per process is the CPU stand-in for one GPU per process;
    # one process on every core is shown too.
    setups = [(1, 1), (2, 1), (1, cores)]
    times: dict[tuple[int, int], list[float]] = {s: [] for s in setups}
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for processes, threads in setups if r % 2 == 0 else setups[::-1]:
                out = launch(processes, threads, args, os.path.join(tmp, f"{processes}-{threads}-{r}.json"))
                times[processes, threads].append(out["seconds"])
                counts[processes, threads] = out["counts"]
                print(
                    f"  round {r + 1}: {processes} process(es) x {out['threads']} threads: {out['seconds']:.1f} s",
                    flush=True,
                )
    one, two, wide = (statistics.median(times[s]) for s in setups)
    print(f"\nexamples: {args.num_examples} Rotten Tomatoes test sentences, n0={args.n0}, n={args.n}")
    print(f"1 process x 1 thread, median: {one:.1f} s ({args.num_examples / one:.2f} examples/s)")
    print(f"2 processes x 1 thread, median: {two:.1f} s ({args.num_examples / two:.2f} examples/s)")
    print(f"1 process x {cores} threads, median: {wide:.1f} s ({args.num_examples / wide:.2f} examples/s)")
    print(
        f"speed-up, 2 processes / 1 (one core each): {one / two:.2f}x (goal >= {GOAL}: "
        f"{'OK' if one / two >= GOAL else 'MISSED'})"
    )
    print(f"speed-up, 2 processes / 1 process on all {cores} cores: {wide / two:.2f}x")
    same = [a == b for a, b in zip(counts[setups[0]], counts[setups[1]], strict=True)]
    print(f"examples with identical vote counts, 1 vs 2 processes (1 thread each): {sum(same)}/{len(same)}")
    print(f"load avg at end: {os.getloadavg()[0]:.2f}")
    if args.output:
        from common import commit

        rows = {
            f"{p} x {t}": {"seconds": times[p, t], "examples_per_minute": 60 * args.num_examples / m}
            for (p, t), m in zip(setups, (one, two, wide), strict=True)
        }
        payload = {
            "command": command,
            "machine": machine,
            "commit": commit(),
            "settings": vars(args),
            "setups": rows,
            "identical_counts": sum(same),
            "examples": args.num_examples,
        }
        Path(args.output).write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
