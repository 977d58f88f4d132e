"""claim_output_dir: a folder holds one run, resumes it, refuses another unless overwrite."""

from __future__ import annotations

import json

import pytest

from frs_hf.evaluation.resume import claim_output_dir


def test_a_folder_holds_one_run(tmp_path):
    run = {"model": "m", "config": {"n": 10}}
    first = claim_output_dir(
        tmp_path, run, outputs=("out.json",), overwrite=False, what="another run", extra={"seed": 7}
    )
    assert first == {**run, "seed": 7} == json.loads((tmp_path / "run.json").read_text())
    # The same run again: the first start's record, its seed kept (not the newly drawn one).
    again = claim_output_dir(
        tmp_path, run, outputs=("out.json",), overwrite=False, what="another run", extra={"seed": 9}
    )
    assert again["seed"] == 7
    (tmp_path / "partial-0.jsonl").write_text("{}\n")
    (tmp_path / "partial").mkdir()
    (tmp_path / "out.json").write_text("{}")
    other = {"model": "m", "config": {"n": 20}}
    with pytest.raises(ValueError, match="holds another run.*overwrite"):
        claim_output_dir(tmp_path, other, outputs=("out.json",), overwrite=False, what="another run")
    record = claim_output_dir(tmp_path, other, outputs=("out.json",), overwrite=True, what="another run")
    assert record == other and sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_results_without_a_run_record_are_another_run(tmp_path):
    (tmp_path / "out.json").write_text("{}")
    with pytest.raises(ValueError, match="holds another run"):
        claim_output_dir(tmp_path, {"a": 1}, outputs=("out.json",), overwrite=False, what="another run")
