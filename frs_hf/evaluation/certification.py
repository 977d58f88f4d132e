"""Certify a whole dataset, on one process or many, and write the reports.

Every example is certified with the randomness of its *dataset position* (``indices=``), so the
results do not depend on how the examples are batched or split across processes: ``accelerate
launch --num_processes 2`` (or ``torchrun``) gives exactly what one process gives, faster.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers.utils import logging

from ..data import require_columns
from ..modeling import FRSResult, SmoothedModelForSequenceClassification
from ..randomize import check_texts
from ..utils import fresh_seed, write_atomic
from .metrics import summarize_certification
from .resume import claim_output_dir

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
        field of every result (its ``seed`` and ``index`` replay it), and ``summary.json``; each file
        is replaced atomically, so a reader never sees half of one."""
        os.makedirs(output_dir, exist_ok=True)
        tsv = ["idx\tlabel\tpredict\tradius\tcorrect\ttime\n"]
        for i, (r, y, s) in enumerate(zip(self.results, self.labels, self.seconds, strict=True)):
            predict = -1 if r.label is None else r.label
            radius = -1 if r.radius is None else r.radius
            tsv.append(f"{i}\t{y}\t{predict}\t{radius}\t{int(predict == y)}\t{s:.4f}\n")
        rows = [_result_line(i, r, y) for i, (r, y) in enumerate(zip(self.results, self.labels, strict=True))]
        write_atomic(os.path.join(output_dir, TSV_NAME), "".join(tsv))
        write_atomic(os.path.join(output_dir, RESULTS_NAME), "".join(rows))
        write_atomic(os.path.join(output_dir, SUMMARY_NAME), json.dumps(self.summary, indent=2) + "\n")


def _result_line(idx: int, result: FRSResult, label: int, seconds: float | None = None) -> str:
    extra = {} if seconds is None else {"seconds": seconds}
    return json.dumps({"idx": idx, "true_label": label, **result.to_dict(), **extra}) + "\n"


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
    overwrite: bool = False,
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
    ``dataset_name`` and ``split`` are recorded in the summary (the model card cites them), and the summary is
    kept on ``smoothed.certification_results`` (what ``push_to_hub``'s model card reports). Under several
    GPU processes each moves the model to its GPU for the run and back to where it was after.

    With ``output_dir``, every finished batch is appended to ``partial-<process>.jsonl`` there, next to
    ``run.json`` (what is being certified: model, data, settings and the seed in use). Running the same
    call again resumes where it stopped and ends with the files an uninterrupted run writes (timings
    aside); a folder that holds a *different* run is refused unless ``overwrite=True``.
    """
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list, gather_object

    require_columns(dataset, text_column, label_column)
    if len(dataset) == 0:
        raise ValueError("The dataset is empty: nothing to certify.")
    if texts_per_call < 1:
        raise ValueError(f"texts_per_call must be >= 1, got {texts_per_call}.")
    texts = check_texts(list(dataset[text_column]), name="Dataset row")  # before the first forward
    labels = _label_ids(smoothed, list(dataset[label_column]), label_column)
    config = smoothed.frs_config.replace(**overrides)  # fail early, on every process, on a bad setting

    # On CPU-only machines (torchrun / accelerate launch --cpu) the process group must be asked for.
    state = PartialState(cpu=not torch.cuda.is_available())
    # One GPU per process, as accelerate places models; the caller's model goes back where it was.
    with _placed(smoothed.model, state.device if state.device.type != "cpu" else smoothed.device):
        # One seed for the whole run, drawn by the main process: the same draws however the run is split.
        seed = [config.seed if config.seed is not None else fresh_seed()]
        run = {
            "model": _model_fingerprint(smoothed),
            "data": _data_fingerprint(texts, labels, dataset_name, split),
            "config": asdict(config),
            "predict_only": predict_only,
        }
        if output_dir is not None and state.is_main_process:
            outputs = (TSV_NAME, RESULTS_NAME, SUMMARY_NAME)
            what = "the results of a different certification run"
            # A resumed run keeps the seed it started with (drawn fresh when none was asked for).
            seed[0] = claim_output_dir(
                output_dir, run, outputs=outputs, overwrite=overwrite, what=what, extra={"seed": seed[0]}
            )["seed"]
        if state.num_processes > 1:
            broadcast_object_list(seed)
        done = {} if output_dir is None else _finished(output_dir)
        config = config.replace(seed=seed[0])
        method = smoothed.predict if predict_only else smoothed.certify
        local: list[tuple[int, FRSResult, float]] = []
        with state.split_between_processes(list(range(len(texts)))) as mine:
            todo = [i for i in mine if i not in done]
            local += [(i, *done[i]) for i in mine if i in done]
            partial = None if output_dir is None else os.path.join(output_dir, f"partial-{state.process_index}.jsonl")
            bar = tqdm(
                total=len(mine),
                initial=len(mine) - len(todo),
                desc="Certifying",
                unit="example",
                disable=not state.is_local_main_process or not logging.is_progress_bar_enabled(),
            )
            with bar:
                for start in range(0, len(todo), texts_per_call):
                    batch = todo[start : start + texts_per_call]
                    begin = time.perf_counter()
                    results = method([texts[i] for i in batch], indices=batch, **asdict(config))
                    seconds = (time.perf_counter() - begin) / len(batch)
                    local += [(i, r, seconds) for i, r in zip(batch, results, strict=True)]
                    if partial is not None:  # appended as soon as a batch is done: an interrupt loses one batch
                        with open(partial, "a", encoding="utf-8") as f:
                            f.write(
                                "".join(
                                    _result_line(i, r, labels[i], seconds) for i, r in zip(batch, results, strict=True)
                                )
                            )
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
            config=asdict(config),
            num_processes=state.num_processes,
            seconds_per_example=sum(s for _, _, s in gathered) / len(gathered),
            # What sequential looks save: copies drawn and model forwards (distinct copies), per example.
            copies_per_example=sum(r.num_copies for r in results) / len(results),
            forwards_per_example=sum(r.num_forwards + r.fuzzing_forwards for r in results) / len(results),
            # Abstentions answered by the base model (FRSConfig.fallback): counted in clean_accuracy, never certified.
            fallback_rate=sum(r.fallback for r in results) / len(results),
        )
        if not predict_only:
            smoothed.certification_results = summary  # the model card of a later push_to_hub shows it
        report = DatasetCertification(results, labels, [s for _, _, s in gathered], summary)
        if output_dir is not None and state.is_main_process:
            report.write(output_dir)
            for name in os.listdir(output_dir):
                if name.startswith("partial-"):
                    os.remove(os.path.join(output_dir, name))
        state.wait_for_everyone()
        return report


@contextmanager
def _placed(model: torch.nn.Module, device: torch.device) -> Iterator[None]:
    """``model`` on ``device`` inside the block, back on its own device after it."""
    home = next(model.parameters()).device
    if home != device:
        model.to(device)
    try:
        yield
    finally:
        if home != device:
            model.to(home)


def _model_fingerprint(smoothed: SmoothedModelForSequenceClassification) -> dict[str, Any]:
    """What tells one model from another without hashing every weight: its source, config and a checksum
    of the first values of every tensor."""
    digest = hashlib.sha1(smoothed.model.config.to_json_string().encode())
    with torch.no_grad():
        for name, param in smoothed.model.state_dict().items():
            digest.update(name.encode())
            digest.update(param.detach().flatten()[:256].float().cpu().numpy().tobytes())
    return {"name_or_path": str(smoothed.model.name_or_path), "checksum": digest.hexdigest()}


def _data_fingerprint(texts: list[str], labels: list[int], name: str | None, split: str | None) -> dict[str, Any]:
    digest = hashlib.sha1(json.dumps([texts, labels]).encode())
    return {"dataset": name, "split": split, "num_examples": len(texts), "sha1": digest.hexdigest()}


def _finished(output_dir: str | os.PathLike) -> dict[int, tuple[FRSResult, float]]:
    """Results already written for this run: a finished run's results.jsonl and every partial file (a
    line cut by an interrupt is ignored and certified again)."""
    names = [n for n in sorted(os.listdir(output_dir)) if n.startswith("partial-") or n == RESULTS_NAME]
    done = {}
    for name in names:
        with open(os.path.join(output_dir, name), encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                idx, seconds = row.pop("idx"), row.pop("seconds", 0.0)
                row.pop("true_label")
                row["area_spans"] = [tuple(span) for span in row["area_spans"]]
                done[idx] = (FRSResult(**row), seconds)
    return done
