"""Output folders that survive an interrupt: ``run.json`` says which run a folder holds.

`certify_dataset` and `evaluate_defenses` save partial results as they go (files or a folder whose
name starts with ``partial``) beside ``run.json``, a JSON description of what is computed. Running
the same call again finds its own ``run.json`` and resumes; a folder that holds another run is
refused, so that no folder ever mixes two runs.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from typing import Any

from ..utils import write_atomic

RUN_NAME = "run.json"


def claim_output_dir(
    output_dir: str | os.PathLike,
    run: dict[str, Any],
    *,
    outputs: Sequence[str],
    overwrite: bool,
    what: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Make ``output_dir`` hold ``run`` and return its ``run.json`` record.

    When the folder already holds this run, the record found there is returned (its ``extra`` keys,
    e.g. the seed drawn when the run started, are the first start's). Otherwise the folder must be
    new or ``overwrite`` given -- ``outputs`` without a ``run.json`` count as another run -- and then
    ``outputs``, ``run.json`` and every ``partial*`` entry are removed and ``{**run, **extra}`` is
    written. ``what`` names the other run in the error (``"another evaluation"``).
    """
    extra = extra or {}
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, RUN_NAME)
    previous = None
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
    elif any(os.path.exists(os.path.join(output_dir, name)) for name in outputs):
        previous = {}  # results of a run that did not record itself: not this one
    if previous is not None:
        if {k: v for k, v in previous.items() if k not in extra} == json.loads(json.dumps(run)):
            return previous
        if not overwrite:
            raise ValueError(
                f"{output_dir} holds {what} (other model, data or settings; see its run.json). Choose another "
                "output folder, or pass overwrite=True (--overwrite) to replace it."
            )
        for name in os.listdir(output_dir):
            target = os.path.join(output_dir, name)
            if name.startswith("partial") and os.path.isdir(target):
                shutil.rmtree(target)
            elif name.startswith("partial") or name in (*outputs, RUN_NAME):
                os.remove(target)
    record = {**run, **extra}
    write_atomic(path, json.dumps(record, indent=2) + "\n")
    return record
