"""Certify a dataset with a smoothed checkpoint and read its report.

    python examples/certify_dataset.py --model frs-sentiment --dataset rotten_tomatoes --split test \\
        --num-examples 200 --output certify-report --sequential

Writes ``results.jsonl`` (every certificate), ``summary.json`` (clean accuracy, abstentions, certified
accuracy at each radius, copies and forwards per example) and ``certify.tsv`` (Cohen et al.'s format) to
``--output``; an interrupted run resumes when started again. Runs on several processes under
``torchrun`` / ``accelerate launch``. The settings are the checkpoint's ``frs_config.json`` unless
overridden here (``--n``, ``--alpha``, ``--sequential``).
"""

from __future__ import annotations

import argparse
import json

from frs_hf import SmoothedModelForSequenceClassification
from frs_hf.data import load_any_dataset
from frs_hf.evaluation import certify_dataset


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="Smoothed checkpoint: folder, Hub id or packaged:minilm.")
    p.add_argument("--dataset", required=True, help="Hub dataset, local csv/tsv/json/jsonl or a packaged name.")
    p.add_argument("--split", default="test")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--num-examples", type=int, default=None, help="Certify the first N examples only.")
    p.add_argument("--output", default=None, help="Folder for the report (resumable).")
    p.add_argument("--n", type=int, default=None, help="Copies per example (the checkpoint's setting if unset).")
    p.add_argument("--alpha", type=float, default=None)
    p.add_argument("--sequential", action="store_true", help="Stop each example once its certificate is decided.")
    args = p.parse_args(argv)

    smoothed = SmoothedModelForSequenceClassification.from_pretrained(args.model)
    data = load_any_dataset(args.dataset, split=args.split)
    if args.num_examples is not None:
        data = data.select(range(min(args.num_examples, len(data))))
    overrides = {k: v for k, v in (("n", args.n), ("alpha", args.alpha)) if v is not None}
    if args.sequential:
        overrides["sequential"] = True
    report = certify_dataset(
        smoothed,
        data,
        args.text_column,
        args.label_column,
        output_dir=args.output,
        dataset_name=args.dataset,
        split=args.split,
        **overrides,
    )
    summary = report.summary
    print(
        f"{summary['num_examples']} examples: smoothed accuracy {summary['clean_accuracy']:.3f}, "
        f"abstained {summary['abstention_rate']:.3f}, {summary['forwards_per_example']:.0f} forwards per example"
    )
    for radius, accuracy in summary["certified_accuracy"].items():
        print(f"certified accuracy at radius >= {radius}: {accuracy:.3f}")
    first = report.results[0]
    print("first certificate:", json.dumps({k: first.to_dict()[k] for k in ("label_name", "p_lower", "radius")}))
    return summary


if __name__ == "__main__":
    main()
