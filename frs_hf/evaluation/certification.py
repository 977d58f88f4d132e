"""Certify a whole dataset, on one process or many, and write the reports.

Every example is certified with the randomness of its *dataset position* (``indices=``), so the
results do not depend on how the examples are batched or split across processes: ``accelerate
launch --num_processes 2`` (or ``torchrun``) gives exactly what one process gives, faster.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from ..data import require_columns
from ..modeling import FRSResult, SmoothedModelForSequenceClassification
from .metrics import summarize_certification

TSV_NAME, RESULTS_NAME, SUMMARY_NAME = "certify.tsv", "results.jsonl", "summary.json"


@dataclass
class DatasetCertification:
    """Per-example results in dataset order, their true labels, and the summary metrics."""

    results: list[FRSResult]
    labels: list[int]
    seconds: list[float]  # per example: its batch's time divided by the batch size
    summary: dict[str, Any]

    def write(self, output_dir: str | os.PathLike) -> None:
        """``certify.tsv`` in the format of Cohen et al.'s analysis tools (``idx label predict radius
        correct time``; ``predict`` and ``radius`` are -1 on abstention), ``results.jsonl`` with every
        field of every result, and ``summary.json``."""
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, TSV_NAME), "w", encoding="utf-8") as f:
            f.write("idx\tlabel\tpredict\tradius\tcorrect\ttime\n")
            for i, (r, y, s) in enumerate(zip(self.results, self.labels, self.seconds, strict=True)):
                predict = -1 if r.label is None else r.label
                radius = -1 if r.radius is None else r.radius
                f.write(f"{i}\t{y}\t{predict}\t{radius}\t{int(predict == y)}\t{s:.4f}\n")
        with open(os.path.join(output_dir, RESULTS_NAME), "w", encoding="utf-8") as f:
            for i, (r, y) in enumerate(zip(self.results, self.labels, strict=True)):
                f.write(json.dumps({"idx": i, "true_label": y, **r.to_dict()}) + "\n")
        with open(os.path.join(output_dir, SUMMARY_NAME), "w", encoding="utf-8") as f:
            json.dump(self.summary, f, indent=2)
            f.write("\n")


def _label_ids(smoothed: SmoothedModelForSequenceClassification, values: list, column: str) -> list[int]:
    """True labels as class ids of the model: ints in range, or label names the model knows."""
    label2id = {name: i for i, name in smoothed.id2label.items()}
    ids = []
    for value in values:
        if isinstance(value, str) and value in label2id:
            ids.append(label2id[value])
        elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < smoothed.num_labels:
            ids.append(value)
        else:
            raise ValueError(
                f"Label {value!r} in column {column!r} is not one of the model's {smoothed.num_labels} labels "
                f"(ids 0-{smoothed.num_labels - 1} or names {sorted(label2id)})."
            )
    return ids


def certify_dataset(
    smoothed: SmoothedModelForSequenceClassification,
    dataset,
    text_column: str = "text",
    label_column: str = "label",
    *,
    texts_per_call: int = 32,
    output_dir: str | os.PathLike | None = None,
    predict_only: bool = False,
    dataset_name: str | None = None,
    split: str | None = None,
    **overrides: Any,
) -> DatasetCertification:
    """Certify every example of a ``datasets.Dataset`` (anything with ``column_names`` and column access).

    Run under ``accelerate launch`` / ``torchrun`` to split the examples across processes; the
    main process gathers the results in dataset order, writes the reports (when ``output_dir`` is
    given) and every process returns the same :class:`DatasetCertification`. ``overrides`` are
    ``FRSConfig`` fields (``n=...``, ``fuzzing=True``, ...). ``predict_only`` skips the radius.
    ``dataset_name`` and ``split`` are recorded in the summary (the model card cites them).
    """
    from accelerate import PartialState
    from accelerate.utils import gather_object

    require_columns(dataset, text_column, label_column)
    if len(dataset) == 0:
        raise ValueError("The dataset is empty: nothing to certify.")
    if texts_per_call < 1:
        raise ValueError(f"texts_per_call must be >= 1, got {texts_per_call}.")
    texts = list(dataset[text_column])
    labels = _label_ids(smoothed, list(dataset[label_column]), label_column)
    smoothed.frs_config.replace(**overrides)  # fail early, on every process, on a bad setting

    # On CPU-only machines (torchrun / accelerate launch --cpu) the process group must be asked for.
    state = PartialState(cpu=not torch.cuda.is_available())
    if state.device.type != "cpu" and smoothed.device != state.device:
        smoothed.model.to(state.device)  # one GPU per process, as accelerate places models
    method = smoothed.predict if predict_only else smoothed.certify
    local: list[tuple[int, FRSResult, float]] = []
    with state.split_between_processes(list(range(len(texts)))) as mine:
        bar = tqdm(total=len(mine), desc="Certifying", unit="example", disable=not state.is_local_main_process)
        with bar:
            for start in range(0, len(mine), texts_per_call):
                batch = mine[start : start + texts_per_call]
                begin = time.perf_counter()
                results = method([texts[i] for i in batch], indices=batch, **overrides)
                seconds = (time.perf_counter() - begin) / len(batch)
                local += [(i, r, seconds) for i, r in zip(batch, results, strict=True)]
                bar.update(len(batch))
    gathered = sorted(gather_object(local) if state.num_processes > 1 else local, key=lambda t: t[0])
    results = [r for _, r, _ in gathered]
    summary = summarize_certification(
        labels, [r.label for r in results], [None if predict_only else r.radius for r in results]
    )
    if predict_only:  # no radius was computed: there is no certified accuracy to report
        del summary["certified_accuracy"], summary["mean_certified_radius"]
    summary.update(
        dataset=dataset_name,
        split=split,
        config=asdict(smoothed.frs_config.replace(**overrides)),
        num_processes=state.num_processes,
        seconds_per_example=sum(s for _, _, s in gathered) / len(gathered),
    )
    if not predict_only:
        smoothed.certification_results = summary  # the model card of a later push_to_hub shows it
    report = DatasetCertification(results, labels, [s for _, _, s in gathered], summary)
    if output_dir is not None and state.is_main_process:
        report.write(output_dir)
    state.wait_for_everyone()
    return report
