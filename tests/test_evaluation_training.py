"""`fine_tune`: the benchmarks' and the demo's training recipe, plain and FRS."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_bert
from datasets import Dataset
from transformers import Trainer

from frs_hf import FRSTrainer
from frs_hf.evaluation.training import fine_tune


@pytest.mark.parametrize(("frs", "trainer_class"), [(None, Trainer), ({"frs_config": {"omega_low": 0.3}}, FRSTrainer)])
def test_fine_tune_trains_in_place_with_either_trainer(tmp_path, tokenizer, rotten_tomatoes, frs, trainer_class):
    rows = rotten_tomatoes["train"].select(range(32))
    train = Dataset.from_dict({"review": rows["text"], "y": rows["label"]})  # other column names: renamed
    model = tiny_bert(tokenizer)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = fine_tune(
        model, tokenizer, train, tmp_path, frs=frs, batch_size=16, text_column="review", label_column="y"
    )
    assert type(trainer) is trainer_class and trainer.state.global_step == 2
    if frs is not None:
        assert trainer.frs_config.omega_low == 0.3
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_fine_tune_names_a_missing_column(tmp_path, tokenizer):
    train = Dataset.from_dict({"text": ["a good film"], "stars": [1]})
    with pytest.raises(ValueError, match="Column 'label' not found in the training set; its columns are: text, stars"):
        fine_tune(tiny_bert(tokenizer), tokenizer, train, tmp_path)
