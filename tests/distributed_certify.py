"""Run by tests/test_evaluation_certification.py under ``torchrun --nproc_per_node 2``."""

import json
import sys

from accelerate import PartialState
from datasets import load_dataset

from frs_hf import SmoothedModelForSequenceClassification
from frs_hf.evaluation import certify_dataset

model_dir, data_file, output_dir = sys.argv[1:4]
smoothed = SmoothedModelForSequenceClassification.from_pretrained(model_dir)
dataset = load_dataset("json", data_files=data_file, split="train")
report = certify_dataset(smoothed, dataset, texts_per_call=3, output_dir=output_dir, n0=10, n=60)
state = PartialState()
if state.is_main_process:  # every rank returns the gathered report; one of them says so
    print(json.dumps({"num_processes": report.summary["num_processes"], "num_results": len(report.results)}))
state.destroy_process_group()  # left to the interpreter's exit, gloo's threads can abort rank 0 (seen under load)
