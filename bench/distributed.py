"""Throughput of ``certify_dataset`` on 2 processes against 1, same examples, same machine.

Launches ``torchrun --nproc_per_node P`` (the CPU stand-in for ``accelerate launch``) for P = 1
and P = 2 in alternating rounds; the cores are shared fairly (``OMP_NUM_THREADS`` = cores / P, so
both runs use every core). Each worker certifies the same Rotten Tomatoes test sentences with the
packaged MiniLM; the time is taken between two barriers around ``certify_dataset`` (model loading
excluded). Goal: 2 processes >= 1.6x the throughput of 1. The script also checks that both runs
produced identical results.

    python bench/distributed.py
    python bench/distributed.py --num-examples 64 --n 500 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
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
    from transformers.utils import logging as hf_logging

    from frs_hf import FRSConfig, SmoothedModelForSequenceClassification
    from frs_hf.data import load_packaged_dataset
    from frs_hf.evaluation import certify_dataset
    from frs_hf.packaged import minilm_path

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    state = PartialState(cpu=not torch.cuda.is_available())
    config = FRSConfig(omega_low=0.7, n0=args.n0, n=args.n, max_length=64)
    smoothed = SmoothedModelForSequenceClassification.from_pretrained(minilm_path(), config, num_labels=2)
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


def launch(processes: int, args: argparse.Namespace, out: str) -> dict:
    cores = os.cpu_count() or 1
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // processes)), "TOKENIZERS_PARALLELISM": "false"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(processes),
        __file__,
        "--worker",
        "--out",
        out,
        "--num-examples",
        str(args.num_examples),
        "--n",
        str(args.n),
        "--n0",
        str(args.n0),
        "--texts-per-call",
        str(args.texts_per_call),
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
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return 0
    print("command:", shlex.join(["python", *sys.argv]))
    print(f"machine: {platform.machine()} | nproc={os.cpu_count()} | load avg {os.getloadavg()[0]:.2f}")
    times: dict[int, list[float]] = {1: [], 2: []}
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for processes in (1, 2) if r % 2 == 0 else (2, 1):
                out = launch(processes, args, os.path.join(tmp, f"{processes}-{r}.json"))
                times[processes].append(out["seconds"])
                counts[processes] = out["counts"]
                print(
                    f"  round {r + 1}: {processes} process(es) x {out['threads']} threads: {out['seconds']:.1f} s",
                    flush=True,
                )
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"\nexamples: {args.num_examples} Rotten Tomatoes test sentences, n0={args.n0}, n={args.n}")
    print(f"1 process, median: {one:.1f} s ({args.num_examples / one:.2f} examples/s)")
    print(f"2 processes, median: {two:.1f} s ({args.num_examples / two:.2f} examples/s)")
    print(f"speed-up: {one / two:.2f}x (goal >= {GOAL}: {'OK' if one / two >= GOAL else 'MISSED'})")
    print(f"identical results on 1 and 2 processes: {counts[1] == counts[2]}")
    print(f"load avg at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
