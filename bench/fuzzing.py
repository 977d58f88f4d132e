"""Does fuzzing find the trigger? MCTS vs leave-one-out occlusion vs random spans, one run.

For each backdoored MiniLM (trained and cached by ``bench/backdoor.py``), on triggered test
texts of the non-target class:

- capture: the vulnerable area contains *every* trigger word, over all triggered texts and over
  the "flipped" ones (the plain model's prediction goes from the true label to the target only
  because of the trigger; where it does not, removing the trigger changes nothing and no search
  can see it), and over the texts where the trigger *matters*: deleting it moves the model's
  output by at least ``fuzzing_min_kl`` (the floor below which the area rule flags nothing);
- disarmed: over the flipped texts, deleting the area (every word of it, one extra forward outside the budget)
  gives the plain model's answer on the clean text back -- what the area is for, whether or not it holds every
  trigger word (the transplant test keeps only the words that act, e.g. "3D" of an inserted sentence);
- why the misses miss (``miss_cause``): the trigger moves the output less than the floor, the
  words missed are inert once the flagged ones are deleted, or the search failed;
- forwards per input (mean / max), the original text included;
- on the same texts without the trigger: the area's median (and mean) fraction of the words, and
  how often the area is empty.

    python bench/fuzzing.py                                # Rotten Tomatoes, BadNet + AddSent
    python bench/fuzzing.py --datasets imdb --attacks badnet --num-test 30 --train-size 3000 --epochs 2 \
        --learning-rate 1e-4 --poison-rate 0.2   # long reviews (about 230 words)
    python bench/fuzzing.py --methods mcts --budget 128   # one area finder, another budget
    python bench/fuzzing.py --methods mcts mcts-calibrated   # the floor fitted to each model (calibrate_fuzzing)
    python bench/fuzzing.py --methods mcts-calibrated mcts-partners-calibrated --empty-fraction 0.5 --by-class
    python bench/fuzzing.py --methods mcts-partners --min-kl 0.9   # another fixed floor
    python bench/fuzzing.py --seeds 0 1 2   # three trigger draws on the same sentences, and their pool
    python bench/fuzzing.py --methods mcts mcts-transplant --output results/fuzzing-transplant.json   # from bench/

``mcts-calibrated`` first fits ``fuzzing_min_kl`` to the model on ``--calibration-texts`` test texts
that the table does not use (both classes), at ``--empty-fraction`` (``calibrate_fuzzing``'s
default 0.8) of them -- with ``--by-class``, of each class the model predicts -- without an area;
``mcts-partners-calibrated`` adds partner words to that floor. The floor is printed in the
``min_kl`` column. ``mcts-transplant`` runs the transplant test on ``--reference-texts`` other held-out test texts
(both classes): an area stays only if inserting it moves at least 90% of the references of another class to the
text's class (``FuzzingConfig.reference_texts``). ``--output`` writes the table as a results file.

``--seeds`` draws the triggers (words and positions) and the search's random stream anew per seed,
on the same sentences and the same model, and adds a ``pooled`` row per method over all draws: one
draw of 200 texts pins a capture rate only to 3-4 points either way (the exact 95% interval printed
next to it).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from backdoor import DEFAULT_MAX_LENGTH, backdoored_model
from common import commit, print_header, setup

from frs_hf import FRSConfig, FuzzingConfig, SmoothedModelForSequenceClassification, TextUnits, segment
from frs_hf.attacks import get_attack, triggered_test_set
from frs_hf.baselines import class_probabilities
from frs_hf.data import load_packaged_dataset
from frs_hf.evaluation.metrics import proportion_interval
from frs_hf.fuzzing import area_mask, kl_divergence, original_sequence

# name: FuzzingConfig settings changed from the defaults; "mcts-margin0" and "mcts-partners" show what the
# margin and partner words add (docs/fuzzing.md).
VARIANTS = {
    "mcts": {},
    "mcts-margin0": {"margin": 0},
    "mcts-partners": {"partner_words": True},
    "mcts-calibrated": {},  # min_kl from calibrate_fuzzing (run())
    "mcts-partners-calibrated": {"partner_words": True},  # the same floor
    # reference_texts from run(): the transplant test, a reference moved by its answer alone or, as by default,
    # with a probability of at least 0.8 ("confident")
    "mcts-transplant": {"partner_words": False, "transplant_confidence": 0.0},
    "mcts-partners-transplant": {"partner_words": True, "transplant_confidence": 0.0},
    "mcts-confident-transplant": {"partner_words": True, "transplant_confidence": 0.8},
    "occlusion": {"method": "occlusion"},
    "random": {"method": "random"},
}


MISS_CAUSES = ("floor", "inert", "search", "test")


def miss_cause(
    smoothed: SmoothedModelForSequenceClassification,
    config: FRSConfig,
    units: TextUnits,
    triggers: Sequence[int],
    area: Sequence[int],
    max_length: int,
) -> str:
    """Why a triggered text's area misses a trigger word (three extra forwards, outside the budget):

    - "floor": deleting every trigger word moves the output by less than ``fuzzing_min_kl``, so
      the area rule may not flag them (no floor-based search can);
    - "inert": deleting the area already moves the output to within ``fuzzing_dominance`` of
      deleting the area and every trigger word -- the words it missed do nothing once the flagged
      ones are gone (e.g. a second BadNet word the model ignores);
    - "search": the search missed a trigger that matters (budget, scattered words).

    ("test": the search found an area that the transplant test then dropped; ``run`` tells those apart.)
    """
    query = smoothed.fuzzing_query(config)
    sequences = [original_sequence(units, max_length, gone) for gone in ((), triggers, area, [*area, *triggers])]
    base, *deleted = query(sequences)
    no_trigger, no_area, neither = kl_divergence(np.stack(deleted), base[None, :])
    if no_trigger < config.fuzzing_config.min_kl:
        return "floor"
    return "inert" if no_area >= (1 - config.fuzzing_config.dominance) * neither else "search"


@dataclass
class Measured:
    """One area finder on one trigger draw: per triggered text, whether the area captured the trigger
    (and the subsets it is reported over); the misses' causes; forwards; clean texts' area fractions."""

    captured: np.ndarray
    disarmed: np.ndarray
    flipped: np.ndarray
    matters: np.ndarray
    misses: list[str]
    forwards: list[int]
    fractions: list[float]
    words: list[int]
    seconds: float

    @classmethod
    def pool(cls, draws: Sequence[Measured]) -> Measured:
        """All draws' texts as one sample (the clean texts repeat across draws, searched anew)."""
        return cls(
            *(np.concatenate([getattr(d, k) for d in draws]) for k in ("captured", "disarmed", "flipped", "matters")),
            *(sum((getattr(d, k) for d in draws), []) for k in ("misses", "forwards", "fractions", "words")),
            seconds=sum(d.seconds for d in draws),
        )

    def row(self) -> dict:
        """The table's measured columns (the labels -- dataset, method, seed, ... -- go in front)."""
        lo, hi = proportion_interval(int(self.captured.sum()), len(self.captured))
        fractions = np.array(self.fractions)
        return {
            "capture (all)": f"{self.captured.mean():.3f} [{lo:.3f}, {hi:.3f}]",
            "capture (flipped)": f"{self.captured[self.flipped].mean():.3f} ({self.flipped.sum()})",
            "capture (trigger matters)": f"{self.captured[self.matters].mean():.3f} ({self.matters.sum()})",
            "disarmed (flipped)": f"{self.disarmed[self.flipped].mean():.3f}",
            "misses: " + " / ".join(MISS_CAUSES): " / ".join(str(self.misses.count(c)) for c in MISS_CAUSES),
            "forwards mean / max": f"{np.mean(self.forwards):.1f} / {max(self.forwards)}",
            "clean area median / mean": f"{np.median(fractions):.3f} / {fractions.mean():.3f}",
            "clean empty": f"{np.mean(fractions == 0):.2f}",
            "words median": f"{np.median(self.words):.0f}",
            "seconds": f"{self.seconds:.0f}",
        }


def run(
    dataset: str,
    attack: str,
    num_test: int,
    budget: int,
    seed: int,
    training: dict,
    variants: Sequence[str] = tuple(VARIANTS),
    calibration_texts: int = 100,
    empty_fraction: float = 0.8,
    by_class: bool = False,
    min_kl: float = FuzzingConfig.min_kl,
    reference_texts: int = 16,
) -> list[tuple[dict, Measured]]:
    """Each variant on one trigger draw (``seed``): ``(row labels, measurements)`` per variant."""
    model, tokenizer, info = backdoored_model(dataset, attack, **training)
    max_length = DEFAULT_MAX_LENGTH[dataset]
    attack_config = get_attack(attack, seed=seed)
    test = load_packaged_dataset(dataset)["test"]
    triggered = triggered_test_set(test, attack_config).select(range(num_test))
    clean = test.filter(lambda y: y != attack_config.target_label, input_columns="label").select(range(num_test))
    # triggered[i] is clean[i] with the trigger inserted (both: the non-target test rows, in order).
    clean_probs = class_probabilities(model, tokenizer, list(clean["text"]), max_length=max_length)
    trig_probs = class_probabilities(model, tokenizer, list(triggered["text"]), max_length=max_length)
    target = attack_config.target_label
    clean_answers = clean_probs.argmax(-1)
    flipped = (clean_answers != target) & (trig_probs.argmax(-1) == target)

    smoothed = SmoothedModelForSequenceClassification.from_model(
        model,
        tokenizer,
        FRSConfig(fuzzing_config=FuzzingConfig(budget=budget, min_kl=min_kl), max_length=max_length, seed=seed),
    )
    matters = kl_divergence(clean_probs, trig_probs) >= FuzzingConfig.min_kl  # the default floor, 1 nat
    triggered_units = segment(tokenizer, list(triggered["text"]))
    clean_units = segment(tokenizer, list(clean["text"]))
    non_target = [i for i, y in enumerate(test["label"]) if y != attack_config.target_label]
    used = set(non_target[:num_test])  # the rows of `clean` and (triggered) of `triggered`
    unused = [i for i in range(len(test)) if i not in used]
    stop = len(unused) - calibration_texts  # the references just before the calibration texts
    references = list(test.select(unused[stop - reference_texts : stop])["text"])
    calibrated = None
    if any(v.endswith("-calibrated") for v in variants):
        held_out = unused[-calibration_texts:]
        default = smoothed.frs_config
        # Sets smoothed.frs_config.fuzzing_config.min_kl. Partner words only widen an area, never make one.
        smoothed.calibrate_fuzzing(
            list(test.select(held_out)["text"]), empty_fraction=empty_fraction, by_class=by_class
        )
        calibrated, smoothed.frs_config = smoothed.frs_config, default
    results = []
    for variant in variants:
        test_on = {"reference_texts": references} if variant.endswith("-transplant") else {}
        config = (calibrated if variant.endswith("-calibrated") else smoothed.frs_config).replace(
            fuzzing_config=VARIANTS[variant] | test_on
        )
        start = time.perf_counter()
        captured, disarmed, forwards, fractions, misses = [], [], [], [], []
        query = smoothed.fuzzing_query(config)
        for i, (units, positions) in enumerate(zip(triggered_units, triggered["trigger_positions"], strict=True)):
            found = smoothed.find_area(units, config, index=i)
            inside = area_mask(found.area, units.num_units)
            captured.append(bool(inside[positions].all()))
            without_area = query([original_sequence(units, max_length, np.flatnonzero(inside))])[0]
            disarmed.append(int(without_area.argmax()) == int(clean_answers[i]))
            forwards.append(found.num_forwards)
            if not captured[-1] and found.transplant is not None and not found.area:
                misses.append("test")
            elif not captured[-1]:
                misses.append(miss_cause(smoothed, config, units, positions, np.flatnonzero(inside), max_length))
        for i, units in enumerate(clean_units):
            found = smoothed.find_area(units, config, index=i)
            forwards.append(found.num_forwards)
            fractions.append(sum(b - a for a, b in found.area) / units.num_units)
        measured = Measured(
            np.array(captured),
            np.array(disarmed),
            flipped,
            matters,
            misses,
            forwards,
            fractions,
            [u.num_units for u in clean_units],
            time.perf_counter() - start,
        )
        labels = {
            "dataset": dataset,
            "attack": attack,
            "method": variant,
            "seed": str(seed),
            "margin": str(config.fuzzing_config.margin),
            "min_kl": f"{config.fuzzing_config.min_kl:g}",
            "undefended CA / ASR": f"{info['clean_accuracy']:.3f} / {info['attack_success_rate']:.3f}",
        }
        results.append((labels, measured))
        print(" | ".join((labels | measured.row()).values()), flush=True)
    return results


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The backdoored model's options and ``--threads`` (shared with ``bench/fuzzing_trace.py``)."""
    group = parser.add_argument_group("the backdoored model (bench/backdoor.py; trained once, then cached)")
    group.add_argument("--train-size", type=int, default=None)
    group.add_argument("--epochs", type=float, default=1)
    group.add_argument("--learning-rate", type=float, default=5e-5)
    group.add_argument("--poison-rate", type=float, default=None, help="Default: the attack's (0.1).")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's).")


def model_settings(args: argparse.Namespace) -> dict:
    """``backdoored_model``'s keyword arguments from :func:`add_model_arguments`' options."""
    training = {"train_size": args.train_size, "epochs": args.epochs, "learning_rate": args.learning_rate}
    if args.poison_rate is not None:
        training["attack_kwargs"] = {"poison_rate": args.poison_rate}
    return training


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["rotten_tomatoes"], choices=["rotten_tomatoes", "imdb"])
    parser.add_argument("--attacks", nargs="+", default=["badnet", "addsent"])
    parser.add_argument("--num-test", type=int, default=200, help="Triggered texts (and as many clean ones).")
    parser.add_argument(
        "--budget", type=int, default=FuzzingConfig.budget, help="Forward budget of MCTS and random spans."
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="Trigger draws (and search streams); several add a pooled row.",
    )
    parser.add_argument(
        "--calibration-texts", type=int, default=100, help="Held-out test texts that mcts-calibrated fits the floor on."
    )
    parser.add_argument(
        "--reference-texts", type=int, default=16, help="Other held-out test texts: mcts-transplant's references."
    )
    parser.add_argument("--output", help="Write the table as a results file (command, machine, commit, rows).")
    parser.add_argument(
        "--min-kl",
        type=float,
        default=FuzzingConfig.min_kl,
        help="fuzzing_min_kl of every variant but the calibrated ones (the 'trigger matters' floor stays 1 nat).",
    )
    parser.add_argument(
        "--empty-fraction",
        type=float,
        default=0.8,
        help="Share of the calibration texts the fitted floor leaves without an area (0.5: the median clean text).",
    )
    parser.add_argument(
        "--by-class",
        action="store_true",
        help="Fit the floor so that --empty-fraction holds within each class the model predicts (by_class=True).",
    )
    parser.add_argument(
        "--methods", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), help="Area finders (default: all)."
    )
    add_model_arguments(parser)
    args = parser.parse_args(argv)
    setup(args.threads)
    command, machine = print_header()
    training = model_settings(args)
    floor = dict(
        reference_texts=args.reference_texts,
        calibration_texts=args.calibration_texts,
        empty_fraction=args.empty_fraction,
        by_class=args.by_class,
        min_kl=args.min_kl,
    )
    rows = []
    for d in args.datasets:
        for a in args.attacks:
            draws = [
                run(d, a, args.num_test, args.budget, seed, training, args.methods, **floor) for seed in args.seeds
            ]
            rows += [labels | measured.row() for draw in draws for labels, measured in draw]
            if len(draws) > 1:
                for per_seed in zip(*draws, strict=True):
                    labels = per_seed[0][0] | {"seed": "pooled", "min_kl": "/".join(r[0]["min_kl"] for r in per_seed)}
                    rows.append(labels | Measured.pool([m for _, m in per_seed]).row())
    print("\n| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(row.values()) + " |")
    if args.output:
        payload = {
            "command": command,
            "machine": machine,
            "commit": commit(),
            "source": "written by bench/fuzzing.py",
            "settings": vars(args),
            "columns": list(rows[0]),
            "rows": [list(row.values()) for row in rows],
        }
        Path(args.output).write_text(json.dumps(payload, indent=1) + "\n")
        print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
