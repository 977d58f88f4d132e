"""What every benchmark script does before it measures: quiet logs, its torch threads, and a header
that names the command and the machine (the results files keep both; docs/benchmarks.md shows the command)."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch
from datasets.utils.logging import disable_progress_bar
from transformers.utils import logging as hf_logging

from frs_hf import FRSConfig, WeightNoiseConfig


def setup(threads: int | None = None, *, progress: bool = False) -> None:
    """Set torch's threads (None: torch's default) and silence transformers' warnings and, unless
    ``progress``, the progress bars of transformers and datasets (they would bury the tables)."""
    if threads:
        torch.set_num_threads(threads)
    hf_logging.set_verbosity_error()
    if not progress:
        hf_logging.disable_progress_bar()
        disable_progress_bar()


def print_header(argv: list[str] | None = None) -> tuple[str, str]:
    """Print and return the ``command:`` and ``machine:`` lines, with a warning when other processes
    share the cores (timings are then noisy; the docs report ratios measured in one process)."""
    command = shlex.join(["python", *(sys.argv if argv is None else argv)])
    load = os.getloadavg()
    cores = os.cpu_count() or 1
    machine = (
        f"{platform.platform()} | nproc={cores} | torch {torch.__version__}, threads={torch.get_num_threads()} "
        f"| load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} | {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
    )
    print(f"command: {command}\nmachine: {machine}", flush=True)
    if load[0] > cores:
        print(f"WARNING: load average {load[0]:.1f} > {cores} cores: other processes share them; timings are noisy.")
    return command, machine


# The benches key their model caches by flat training settings (frs_omega_low=..., frs_weight_noise_sigma=...):
# the FRSConfig settings among them travel to FRSTrainingArguments inside frs_config.
# Their defaults are FRSConfig's, written out so that every cache key names the rates it was trained at.
FLAT_TRAINING = {
    "frs_omega_low": FRSConfig.omega_low,
    "frs_omega_high": FRSConfig.omega_high,
    "frs_weight_noise_sigma": WeightNoiseConfig.sigma,
    "frs_weight_noise_layers": WeightNoiseConfig.layers,
}


def training_arguments(frs: dict | None) -> dict | None:
    """``FRSTrainingArguments`` keywords from a bench's flat training settings (None: the plain Trainer)."""
    if frs is None:
        return None
    flat = {name[len("frs_") :]: value for name, value in frs.items() if name in FLAT_TRAINING}
    rest = {name: value for name, value in frs.items() if name not in FLAT_TRAINING}
    return {**rest, "frs_config": FRSConfig().replace_flat(**flat)}


def commit() -> str:
    """The checked-out commit, marked ``+dirty`` when ``frs_hf/`` has uncommitted changes (results files keep it)."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "frs_hf"], cwd=root, capture_output=True, text=True)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"
