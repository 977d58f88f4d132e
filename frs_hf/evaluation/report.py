"""The backdoor evaluation: every defense, on clean and triggered test texts, over several seeds.

`evaluate_defenses` runs each defense on the clean test set (clean accuracy, certified accuracy at
each radius) and on the triggered test set (attack success rate, poisoned accuracy, abstentions),
once per seed; `BackdoorReport` aggregates the seeds with confidence intervals and writes the
Markdown table, the JSON file and the PNG plot.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from datasets import Dataset
from tqdm.auto import tqdm
from transformers.utils import logging as hf_logging

from ..baselines.base import Defense, DefenseOutput
from ..utils import write_atomic
from .metrics import (
    attack_success_rate,
    mean_interval,
    proportion_interval,
    summarize_attack,
    summarize_certification,
)
from .resume import claim_output_dir

# The proportions every run reports, in table order.
_COLUMNS = (
    "clean_accuracy",
    "attack_success_rate",
    "asr_floor",
    "poisoned_accuracy",
    "triggered_abstention_rate",
    "clean_abstention_rate",
)


def _is_proportion(key: str) -> bool:
    return key in _COLUMNS or key.startswith(("certified_accuracy@", "area_certified_accuracy@"))


# The test set each proportion is over, for its binomial interval (others: the clean texts).
_TEST_SET_SIZE = {
    "attack_success_rate": "num_triggered",
    "poisoned_accuracy": "num_triggered",
    "triggered_abstention_rate": "num_triggered",
    "asr_floor": "num_clean_non_target",
}


def _test_set_size(key: str) -> str:
    return _TEST_SET_SIZE.get(key, "num_clean")


@dataclass
class DefenseRun:
    """One defense, one seed: the per-example outputs and their summary."""

    defense: str
    seed: int
    clean: list[DefenseOutput]
    triggered: list[DefenseOutput]
    summary: dict[str, Any]
    seconds: float


@dataclass
class BackdoorReport:
    """All runs of `evaluate_defenses`; `table()` aggregates them over seeds."""

    runs: list[DefenseRun]
    target_label: int
    max_radius: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def defenses(self) -> list[str]:
        return list(dict.fromkeys(run.defense for run in self.runs))

    def table(self, confidence: float = 0.95) -> dict[str, dict[str, Any]]:
        """Per defense and metric: ``{"mean", "low", "high"}``. Over several seeds the interval is
        Student-t over the seeds' values; with one seed it is the exact binomial interval of that run."""
        out: dict[str, dict[str, Any]] = {}
        for name in self.defenses:
            runs = [r for r in self.runs if r.defense == name]
            row: dict[str, Any] = {"seeds": [r.seed for r in runs]}
            # A run leaves out the certified columns when none of its clean texts got that radius (no area
            # kept, say): its certified accuracy there is 0, which counts when another seed's run has the column.
            certified = ("certified_accuracy@", "area_certified_accuracy@")
            keys = [*_COLUMNS, "mean_certified_radius", "seconds_per_example"]
            keys += list(dict.fromkeys(k for r in runs for k in r.summary if k.startswith(certified)))
            for key in keys:
                values = [r.summary.get(key, 0.0) if key.startswith(certified) else r.summary[key] for r in runs]
                if any(v is None for v in values):
                    continue
                mean, low, high = mean_interval(values, confidence)
                if len(runs) == 1 and _is_proportion(key):
                    n = runs[0].summary[_test_set_size(key)]
                    low, high = proportion_interval(round(mean * n), n, confidence)
                elif _is_proportion(key):  # a Student-t interval of a rate can cross 0 or 1: a rate cannot
                    low, high = max(low, 0.0), min(high, 1.0)
                row[key] = {"mean": mean, "low": low, "high": high}
            out[name] = row
        return out

    def to_markdown(self, confidence: float = 0.95) -> str:
        table = self.table(confidence)
        radii = range(1, self.max_radius + 1)
        has_area = any(f"area_certified_accuracy@{r}" in row for row in table.values() for r in radii)
        header = ["defense", "CA", "ASR", "ASR floor", "PA", "abstained (triggered)"]
        header += [f"cert. acc. r≥{r}" for r in radii]
        header += [f"area cert. acc. r≥{r}" for r in radii] if has_area else []
        header += ["s / example"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

        def cell(row: dict, key: str, percent: bool = True) -> str:
            if key not in row:
                return "–"
            m, lo, hi = row[key]["mean"], row[key]["low"], row[key]["high"]
            if not percent:
                return f"{m:.3f}"
            return f"{100 * m:.1f}" + ("" if np.isnan(lo) else f" [{100 * lo:.1f}, {100 * hi:.1f}]")

        for name, row in table.items():
            cells = [name] + [cell(row, k) for k in _COLUMNS if k != "clean_abstention_rate"]
            cells += [cell(row, f"certified_accuracy@{r}") for r in radii]
            cells += [cell(row, f"area_certified_accuracy@{r}") for r in radii] if has_area else []
            cells += [cell(row, "seconds_per_example", percent=False)]
            lines.append("| " + " | ".join(cells) + " |")
        seeds = sorted({r.seed for r in self.runs})
        note = (
            f"Percentages with {int(confidence * 100)}% intervals ("
            + (
                f"Student-t over {'the merged reports: ' if 'merged' in self.metadata else ''}seeds "
                + ", ".join(map(str, seeds))
                if len(seeds) > 1
                else "exact binomial, one seed"
            )
            + f"). Target label {self.target_label}. ASR counts predictions of the target on triggered non-target "
            "texts; abstentions and rejections are not successes and are shown separately. ASR floor: the same "
            "on the clean non-target texts, i.e. the ASR of a trigger that does nothing. Certified accuracy: "
            "correct with a certified radius ≥ r on the clean test set: word insertions, deletions and "
            "substitutions anywhere for deletion smoothing, substitutions only for uniform masking; area: FRS's "
            "removals inside the fuzzed area (see docs/theory.md and docs/baselines.md for what each assumes)."
        )
        return "\n".join(lines) + "\n\n" + note + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metadata": self.metadata,
            "target_label": self.target_label,
            "max_radius": self.max_radius,
            "table": self.table(),
            "runs": [{k: v for k, v in asdict(r).items() if k not in ("clean", "triggered")} for r in self.runs],
        }

    @classmethod
    def load(cls, path: str | os.PathLike) -> BackdoorReport:
        """A report written by `save` (its folder or ``report.json``): the runs' summaries, without the
        per-example outputs, which is all `table`, `to_markdown`, the plot and `merge` need."""
        path = os.path.join(path, "report.json") if os.path.isdir(path) else path
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        try:
            runs = [DefenseRun(r["defense"], r["seed"], [], [], r["summary"], r["seconds"]) for r in data["runs"]]
            target_label = data["target_label"]
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path} is not a report written by BackdoorReport.save (missing {err}).") from None
        # Reports written before max_radius was saved: the largest radius in the summaries.
        radii = [int(k.rsplit("@", 1)[1]) for r in runs for k in r.summary if "certified_accuracy@" in k]
        max_radius = data.get("max_radius", max(radii, default=0))
        return cls(runs, target_label, max_radius, data.get("metadata", {}))

    @classmethod
    def merge(cls, reports: Sequence[BackdoorReport], seeds: Sequence[int] | None = None) -> BackdoorReport:
        """One report from runs on different models, e.g. one per training seed: every run of
        ``reports[i]`` is labelled ``seeds[i]`` (default ``i``), so that `table`'s intervals are over the
        models. Reports with the same label may hold different defenses (e.g. a model's baselines and
        its FRS row, run separately); a defense twice under one label is an error."""
        seeds = list(range(len(reports))) if seeds is None else list(seeds)
        if not reports or len(seeds) != len(reports):
            raise ValueError(
                f"merge needs at least one report and one seed per report, got {len(reports)} / {len(seeds)}."
            )
        for attribute in ("target_label", "max_radius"):
            values = {getattr(r, attribute) for r in reports}
            if len(values) > 1:
                raise ValueError(f"Reports with different {attribute} ({sorted(values)}) cannot be merged.")
        runs, seen = [], set()
        for report, seed in zip(reports, seeds, strict=True):
            for run in report.runs:
                if (run.defense, seed) in seen:
                    raise ValueError(
                        f"Defense {run.defense!r} appears twice under seed {seed}: merge reports of one seed each."
                    )
                seen.add((run.defense, seed))
                runs.append(DefenseRun(run.defense, seed, run.clean, run.triggered, run.summary, run.seconds))
        metadata = {"merged": [{"seed": seed, **r.metadata} for r, seed in zip(reports, seeds, strict=True)]}
        return cls(runs, reports[0].target_label, reports[0].max_radius, metadata)

    def save(self, output_dir: str | os.PathLike, plot: bool = True) -> dict[str, str]:
        """Write ``report.md``, ``report.json`` and (``plot``) ``report.png``; returns their paths."""
        os.makedirs(output_dir, exist_ok=True)
        paths = {"markdown": os.path.join(output_dir, "report.md"), "json": os.path.join(output_dir, "report.json")}
        write_atomic(paths["markdown"], self.to_markdown())
        write_atomic(paths["json"], json.dumps(self.to_dict(), indent=2, default=float))
        if plot:
            paths["plot"] = os.path.join(output_dir, "report.png")
            plot_report(self, paths["plot"])
        return paths


def _summarize(
    clean: list[DefenseOutput],
    clean_labels: Sequence[int],
    triggered: list[DefenseOutput],
    triggered_labels: Sequence[int],
    target_label: int,
    max_radius: int,
) -> dict[str, Any]:
    predictions = [o.label for o in clean]
    cert = summarize_certification(clean_labels, predictions, [o.radius for o in clean], max_radius=max_radius)
    attack = summarize_attack(triggered_labels, [o.label for o in triggered], target_label)
    # What the defended classifier does to non-target texts *without* the trigger: the part of the ASR
    # that is its own error, not the trigger's doing.
    non_target = [p for p, y in zip(predictions, clean_labels, strict=True) if y != target_label]
    summary = {
        "num_clean": cert["num_examples"],
        "num_clean_non_target": len(non_target),
        "num_triggered": attack["num_examples"],
        "clean_accuracy": cert["clean_accuracy"],
        "clean_abstention_rate": cert["abstention_rate"],
        "attack_success_rate": attack["attack_success_rate"],
        "asr_floor": attack_success_rate(non_target, target_label) if non_target else None,
        "poisoned_accuracy": attack["poisoned_accuracy"],
        "triggered_abstention_rate": attack["abstention_rate"],
        "triggered_rejection_rate": float(np.mean([o.rejected for o in triggered])),
        "mean_certified_radius": None,
    }
    if any(o.radius is not None for o in clean):
        summary["mean_certified_radius"] = cert["mean_certified_radius"]
        for r in range(1, max_radius + 1):
            summary[f"certified_accuracy@{r}"] = cert["certified_accuracy"][str(r)]
    if any(o.area_radius is not None for o in clean):
        area = summarize_certification(clean_labels, predictions, [o.area_radius for o in clean], max_radius=max_radius)
        for r in range(1, max_radius + 1):
            summary[f"area_certified_accuracy@{r}"] = area["certified_accuracy"][str(r)]
    return summary


def run_defense(
    defense: Defense,
    texts: Sequence[str],
    *,
    texts_per_call: int = 32,
    desc: str = "",
    journal: str | os.PathLike | None = None,
) -> list[DefenseOutput]:
    """``defense.predict`` over ``texts`` in chunks, with one progress bar; example ``i`` is seeded by ``i``.

    With ``journal`` (a JSONL file), each finished chunk is appended to it and the chunks already there
    are read instead of run again: an interrupted evaluation resumes where it stopped.
    """
    done: dict[int, list[DefenseOutput]] = {}
    if journal is not None and os.path.isfile(journal):
        with open(journal, encoding="utf-8") as f:
            for line in f:
                try:
                    chunk = json.loads(line)
                except json.JSONDecodeError:  # a line cut by the interrupt: run that chunk again
                    continue
                done[chunk["start"]] = [DefenseOutput(**o) for o in chunk["outputs"]]
    outputs: list[DefenseOutput] = []
    inner_bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the per-call bars of certify() would nest inside this one
    try:
        with tqdm(total=len(texts), desc=desc or defense.name, unit="text", disable=not inner_bars) as bar:
            for start in range(0, len(texts), texts_per_call):
                chunk = list(texts[start : start + texts_per_call])
                if start in done and len(done[start]) == len(chunk):
                    outputs += done[start]
                else:
                    results = defense.predict(chunk, indices=range(start, start + len(chunk)))
                    outputs += results
                    if journal is not None:
                        with open(journal, "a", encoding="utf-8") as f:
                            f.write(json.dumps({"start": start, "outputs": [asdict(o) for o in results]}) + "\n")
                bar.update(len(chunk))
    finally:
        if inner_bars:
            hf_logging.enable_progress_bar()
    return outputs


def evaluate_defenses(
    defenses: Mapping[str, Callable[[int], Defense]],
    clean_texts: Sequence[str],
    clean_labels: Sequence[int],
    triggered_texts: Sequence[str],
    triggered_labels: Sequence[int],
    target_label: int,
    *,
    seeds: Sequence[int] = (0,),
    max_radius: int = 3,
    texts_per_call: int = 32,
    metadata: dict[str, Any] | None = None,
    output_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> BackdoorReport:
    """Run every defense once per seed on the clean and the triggered test texts.

    ``defenses`` maps a name to a factory ``seed -> Defense`` (the seed drives the defense's own
    randomness: smoothing draws, STRIP's superimpositions). The triggered texts must all be of a
    non-target class (`frs_hf.attacks.triggered_test_set` builds them).

    With ``output_dir``, every finished chunk of texts is saved under ``output_dir/partial/`` (with
    ``run.json`` naming the evaluation), so running the same evaluation again resumes where it stopped;
    a folder holding another evaluation is refused unless ``overwrite``. The caller writes the report
    (`BackdoorReport.save`), after which `clear_partial` removes the saved chunks.
    """
    if not defenses:
        raise ValueError("No defenses to evaluate.")
    if len(clean_texts) != len(clean_labels) or len(triggered_texts) != len(triggered_labels):
        raise ValueError("Each test set needs exactly one label per text.")
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed.")
    partial = None
    if output_dir is not None:
        run = {
            "metadata": metadata or {},
            "defenses": list(defenses),
            "seeds": list(seeds),
            "texts": hashlib.sha1(
                json.dumps([clean_texts, clean_labels, triggered_texts, triggered_labels]).encode()
            ).hexdigest(),
            "target_label": target_label,
            "texts_per_call": texts_per_call,
        }
        claim_output_dir(output_dir, run, outputs=("report.json",), overwrite=overwrite, what="another evaluation")
        partial = os.path.join(output_dir, "partial")
        os.makedirs(partial, exist_ok=True)
    runs = []
    for name, build in defenses.items():
        for seed in seeds:
            defense = build(seed)
            start = time.perf_counter()
            clean, triggered = (
                run_defense(
                    defense,
                    texts,
                    texts_per_call=texts_per_call,
                    desc=f"{name} (seed {seed}) {part}",
                    journal=None if partial is None else os.path.join(partial, f"{name}-seed{seed}-{part}.jsonl"),
                )
                for part, texts in (("clean", clean_texts), ("triggered", triggered_texts))
            )
            seconds = time.perf_counter() - start
            summary = _summarize(clean, clean_labels, triggered, triggered_labels, target_label, max_radius)
            summary["seconds_per_example"] = seconds / (len(clean_texts) + len(triggered_texts))
            runs.append(DefenseRun(name, seed, clean, triggered, summary, seconds))
    return BackdoorReport(runs, target_label, max_radius, metadata or {})


def clear_partial(output_dir: str | os.PathLike) -> None:
    """Remove the chunks `evaluate_defenses` saved for resuming, once the report is written."""
    shutil.rmtree(os.path.join(output_dir, "partial"), ignore_errors=True)


def plot_report(report: BackdoorReport, path: str | os.PathLike):
    """Certified accuracy vs radius per certifying defense (left), CA / ASR / abstention bars with each
    defense's ASR floor marked (right). Returns the (closed) matplotlib figure."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("The report plot needs matplotlib: pip install 'frs-hf[demo]' (or matplotlib).") from None
    table = report.table()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    radii = list(range(0, report.max_radius + 1))
    for name, row in table.items():
        for prefix, style in (("certified_accuracy", "-"), ("area_certified_accuracy", "--")):
            if f"{prefix}@1" not in row:
                continue
            curve = [row["clean_accuracy"]["mean"]] + [row[f"{prefix}@{r}"]["mean"] for r in radii[1:]]
            label = name if prefix == "certified_accuracy" else f"{name} (area)"
            left.plot(radii, curve, style, marker="o", label=label)
    left.set(xlabel="radius r (word edits)", ylabel="certified accuracy (clean test)", ylim=(0, 1), xticks=radii)
    left.set_title("Certified accuracy vs radius")
    if left.lines:
        left.legend()
    names = list(table)
    x = np.arange(len(names))
    metrics = [("clean_accuracy", "CA"), ("attack_success_rate", "ASR"), ("triggered_abstention_rate", "abstained")]
    width = 0.8 / len(metrics)
    for k, (key, label) in enumerate(metrics):
        means = np.array([table[n][key]["mean"] for n in names])
        lows = np.array([table[n][key]["low"] for n in names])
        highs = np.array([table[n][key]["high"] for n in names])
        err = None if np.isnan(lows).all() else np.nan_to_num(np.stack([means - lows, highs - means]))
        right.bar(x + (k - 1) * width, means, width, yerr=err, capsize=3, label=label)
    # The ASR floor (the same rate on clean non-target texts: what the ASR would be if the trigger did
    # nothing), as a black tick across each defense's ASR bar.
    floors = np.array([table[n]["asr_floor"]["mean"] if "asr_floor" in table[n] else np.nan for n in names])
    if not np.isnan(floors).all():
        right.hlines(floors, x - width / 2, x + width / 2, colors="black", linewidth=2, label="ASR floor")
    right.set_xticks(x, names, rotation=15)
    right.set(ylim=(0, 1), xlabel="defense", ylabel="fraction of test texts")
    right.set_title("Clean accuracy and attack success")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fig


def backdoor_test_sets(
    test: Dataset,
    attack_config,
    *,
    num_examples: int | None = None,
    seed: int = 0,
    text_column: str = "text",
    label_column: str = "label",
) -> tuple[list[str], list[int], list[str], list[int]]:
    """Clean and triggered test texts for `evaluate_defenses`: ``(clean_texts, clean_labels,
    triggered_texts, triggered_labels)``, each a seeded subset of at most ``num_examples``.

    The triggered texts are the non-target examples with ``attack_config``'s trigger inserted
    (`frs_hf.attacks.triggered_test_set`); their labels are the true ones.
    """
    from ..attacks import triggered_test_set

    triggered = triggered_test_set(test, attack_config, text_column, label_column)
    out = []
    for data in (test, triggered):
        data = data.shuffle(seed=seed)
        if num_examples is not None:
            data = data.select(range(min(num_examples, len(data))))
        out += [list(data[text_column]), [int(y) for y in data[label_column]]]
    return tuple(out)
