"""Step time of ``FRSTrainer`` (every smoothing part on) over the plain ``Trainer``.

Same packaged MiniLM start, same Rotten Tomatoes batches (same seed, batch size, max length), one
process. The two trainers run in alternating rounds of ``--steps`` optimizer steps so that slow
drifts of the machine's load hit both; a callback times each step from ``on_step_begin`` to
``on_step_end`` (forward, backward, optimizer; the first ``--warmup`` steps of a round are
dropped). Goal: FRSTrainer / Trainer <= 1.25.

Randomized copies are shorter than the originals (a fifth of the words deleted), which makes the
FRS forward cheaper; the script also reports the time spent building them (``randomize_batch``) and
the tokens per batch on both sides, so the ratio can be read both ways.

    python bench/trainer_overhead.py
    python bench/trainer_overhead.py --rounds 4 --steps 15 --batch-size 32
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from common import print_header, setup
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from frs_hf import FRSConfig, WeightNoiseConfig
from frs_hf.data import load_packaged_dataset
from frs_hf.packaged import minilm_path
from frs_hf.trainer import FRSTrainer, FRSTrainingArguments

GOAL = 1.25
SMOOTHING = dict(
    frs_config=FRSConfig(omega_low=0.2, weight_noise_config=WeightNoiseConfig(sigma=0.01, layers=1)),
    frs_random_area=0.3,
    frs_update_clip=1.0,
    frs_update_noise=0.1,
    frs_eval_n=0,
)


class StepTimer(TrainerCallback):
    def __init__(self) -> None:
        self.times: list[float] = []
        self.randomize_s: list[float] = []  # FRSTrainer only: time spent building the copies
        self.tokens: list[int] = []  # FRSTrainer only: real tokens per randomized batch

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self.start)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="Alternating rounds per trainer.")
    p.add_argument("--steps", type=int, default=12, help="Optimizer steps per round.")
    p.add_argument("--warmup", type=int, default=2, help="Steps dropped at the start of each round.")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: leave as is).")
    args = p.parse_args(argv)
    setup(args.threads)
    print_header()

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    needed = args.rounds * args.steps * args.batch_size
    train = (
        load_packaged_dataset("rotten_tomatoes")["train"]
        .select(range(needed))
        .map(lambda b: tokenizer(b["text"], truncation=True, max_length=args.max_length), batched=True)
        .remove_columns(["text"])
    )
    common = dict(
        output_dir="/tmp/frs_trainer_overhead",
        use_cpu=True,
        report_to=[],
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=5e-5,
        seed=0,
        disable_tqdm=True,
        save_strategy="no",
        logging_strategy="no",
    )

    def run(kind: str, round_index: int) -> StepTimer:
        set_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=2)
        timer = StepTimer()
        # Each round trains on its own slice of the data, the same slice for both trainers.
        data = train.select(
            range(round_index * args.steps * args.batch_size, (round_index + 1) * args.steps * args.batch_size)
        )
        if kind == "Trainer":
            trainer = Trainer(
                model=model,
                args=TrainingArguments(**common),
                train_dataset=data,
                data_collator=DataCollatorWithPadding(tokenizer),
                processing_class=tokenizer,
                callbacks=[timer],
            )
        else:
            trainer = FRSTrainer(
                model=model,
                args=FRSTrainingArguments(**common, **SMOOTHING),
                train_dataset=data,
                data_collator=DataCollatorWithPadding(tokenizer),
                processing_class=tokenizer,
                callbacks=[timer],
            )
            randomize = trainer.randomize_batch

            def timed_randomize(inputs, key):
                start = time.perf_counter()
                out = randomize(inputs, key)
                timer.randomize_s.append(time.perf_counter() - start)
                timer.tokens.append(int(out["attention_mask"].sum()))
                return out

            trainer.randomize_batch = timed_randomize
        trainer.train()
        return timer

    step_times: dict[str, list[float]] = {"Trainer": [], "FRSTrainer": []}
    randomize_s, frs_tokens = [], []
    for r in range(args.rounds):
        order = ["Trainer", "FRSTrainer"] if r % 2 == 0 else ["FRSTrainer", "Trainer"]
        for kind in order:
            timer = run(kind, r)
            kept = timer.times[args.warmup :]
            step_times[kind].extend(kept)
            if kind == "FRSTrainer":
                randomize_s += timer.randomize_s
                frs_tokens += timer.tokens
            print(f"  round {r + 1}/{args.rounds} {kind:<10s} median step {statistics.median(kept):.3f} s", flush=True)

    plain_tokens = []
    collator = DataCollatorWithPadding(tokenizer)
    for r in range(args.rounds):
        for s in range(args.steps):
            start = (r * args.steps + s) * args.batch_size
            plain_tokens.append(
                int(collator([train[i] for i in range(start, start + args.batch_size)])["attention_mask"].sum())
            )

    plain, frs = statistics.median(step_times["Trainer"]), statistics.median(step_times["FRSTrainer"])
    ratio = frs / plain
    rows = [
        ("steps timed per trainer", f"{len(step_times['Trainer'])} (after {args.warmup} warm-up steps per round)"),
        ("Trainer step, median", f"{plain:.3f} s"),
        ("FRSTrainer step, median", f"{frs:.3f} s"),
        ("FRSTrainer / Trainer", f"{ratio:.3f}x (goal <= {GOAL}: {'OK' if ratio <= GOAL else 'MISSED'})"),
        ("  randomize_batch per step, median", f"{statistics.median(randomize_s) * 1000:.1f} ms"),
        (
            "  real tokens per batch, Trainer / FRS",
            f"{statistics.mean(plain_tokens):.0f} / {statistics.mean(frs_tokens):.0f}",
        ),
        (
            "FRSTrainer / Trainer per real token",
            f"{ratio * statistics.mean(plain_tokens) / statistics.mean(frs_tokens):.3f}x "
            "(the smoothing's cost had the copies been as long as the originals)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(f"load avg at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
