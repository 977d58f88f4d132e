"""Fine-tune a text classifier with FRS training, in the style of transformers' text-classification example.

Every ``FRSTrainingArguments`` field is a flag (``--frs_config '{"omega_low": 0.8}'``, ``--num_train_epochs 3``...),
parsed with ``HfArgumentParser`` as in ``examples/pytorch/text-classification``; the data is any Hub dataset, a local
csv/tsv/json/jsonl file or a packaged one (``rotten_tomatoes``, ``imdb``, ``bbc_news``)::

    python examples/run_classification.py --model_name_or_path packaged:minilm --dataset_name rotten_tomatoes \\
        --output_dir frs-sentiment --frs_config '{"omega_low": 0.8}' --num_train_epochs 3 --learning_rate 1e-4 \\
        --do_train --do_eval

The folder it writes loads with ``SmoothedModelForSequenceClassification.from_pretrained`` (and
``AutoModelForSequenceClassification``): the model, its tokenizer and ``frs_config.json``, the config it was
trained for (``--frs_config`` also takes a folder or an ``frs_config.json`` path). ``eval_smoothed_accuracy`` and
``eval_certified_accuracy_r*`` come from ``--frs_eval_n`` copies.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, HfArgumentParser

from frs_hf import FRSTrainer, FRSTrainingArguments
from frs_hf.data import load_any_dataset, require_columns
from frs_hf.packaged import resolve_model


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "Local folder, Hub id or packaged:minilm."})


@dataclass
class DataArguments:
    dataset_name: str = field(metadata={"help": "Hub dataset, local csv/tsv/json/jsonl file or a packaged name."})
    text_column: str = field(default="text", metadata={"help": "Column holding the text."})
    label_column: str = field(default="label", metadata={"help": "Column holding the class id."})
    eval_split: str = field(default="test", metadata={"help": "Split used for evaluation (after train)."})
    max_seq_length: int = field(default=128, metadata={"help": "Tokens per example (truncated beyond)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep the first N training examples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep the first N eval examples."})


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = HfArgumentParser((ModelArguments, DataArguments, FRSTrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)

    data = load_any_dataset(data_args.dataset_name)
    train, evaluation = data["train"], data[data_args.eval_split] if data_args.eval_split in data else None
    require_columns(train, data_args.text_column, data_args.label_column, what=data_args.dataset_name)
    if data_args.max_train_samples is not None:
        train = train.select(range(min(data_args.max_train_samples, len(train))))
    if evaluation is not None and data_args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(data_args.max_eval_samples, len(evaluation))))
    labels = sorted(set(train[data_args.label_column]))

    path = resolve_model(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels))

    def tokenize(batch):
        encoded = tokenizer(batch[data_args.text_column], truncation=True, max_length=data_args.max_seq_length)
        return {**encoded, "label": batch[data_args.label_column]}

    columns = train.column_names
    train = train.map(tokenize, batched=True, remove_columns=columns)
    if evaluation is not None:
        evaluation = evaluation.map(tokenize, batched=True, remove_columns=evaluation.column_names)

    trainer = FRSTrainer(
        model,
        training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    metrics: dict[str, float] = {}
    if training_args.do_train:
        metrics.update(trainer.train().metrics)
        trainer.save_smoothed_model(training_args.output_dir)
    if training_args.do_eval and evaluation is not None:
        metrics.update(trainer.evaluate())
    for key, value in sorted(metrics.items()):
        print(f"{key} = {value}")
    return metrics


if __name__ == "__main__":
    main(sys.argv[1:])
