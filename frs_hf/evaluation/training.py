"""One fine-tuning recipe for the evaluation suite: the undefended victim and the FRS-trained model
differ only in the trainer class, so any gap between them is the defense's doing."""

from __future__ import annotations

import os
from typing import Any

import torch
from datasets import Dataset
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from ..data import require_columns
from ..trainer import FRSTrainer, FRSTrainingArguments


def fine_tune(
    model,
    tokenizer,
    train: Dataset,
    output_dir: str | os.PathLike,
    *,
    frs: dict[str, Any] | None = None,
    epochs: float = 1.0,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    max_length: int = 64,
    seed: int = 0,
    text_column: str = "text",
    label_column: str = "label",
    disable_tqdm: bool = True,
) -> Trainer:
    """Fine-tune ``model`` in place on ``train`` and return the trainer (after ``train()``).

    ``frs=None`` trains with the plain ``Trainer``; a dict of ``frs_*`` fields (possibly empty)
    trains with `FRSTrainer` and `FRSTrainingArguments` built from them. The recipe: AdamW, linear
    schedule with 10% warm-up, weight decay 0.01, length-grouped batches, nothing saved
    (``output_dir`` is the trainer's scratch folder).
    """
    require_columns(train, text_column, label_column, what="the training set")
    tokenized = train.map(
        lambda batch: tokenizer(batch[text_column], truncation=True, max_length=max_length),
        batched=True,
        remove_columns=[c for c in train.column_names if c != label_column],
        desc="Tokenizing",
    )
    if label_column != "labels" and label_column != "label":
        tokenized = tokenized.rename_column(label_column, "labels")
    common = dict(
        output_dir=str(output_dir),
        use_cpu=not torch.cuda.is_available(),
        report_to=[],
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_steps=0.1,
        weight_decay=0.01,
        train_sampling_strategy="group_by_length",  # less padding; batches are still drawn at random
        eval_strategy="no",
        save_strategy="no",
        logging_steps=50,
        disable_tqdm=disable_tqdm,
        seed=seed,
        data_seed=seed,
    )
    kwargs = dict(
        model=model,
        train_dataset=tokenized,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    if frs is None:
        trainer = Trainer(args=TrainingArguments(**common), **kwargs)
    else:
        trainer = FRSTrainer(args=FRSTrainingArguments(**common, **{"frs_eval_n": 0, **frs}), **kwargs)
    trainer.train()
    return trainer
