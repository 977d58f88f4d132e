"""Publish a smoothed checkpoint to the Hub with its FRS model card (settings, what the certificate
says, and, with ``--certify``, a certification summary).

    hf auth login
    python examples/push_to_hub.py --model frs-sentiment --repo-id your-name/frs-sentiment \\
        --certify rotten_tomatoes --num-examples 200

One commit with the weights, the tokenizer, ``frs_config.json`` and the card. ``--local-dir`` writes the
same files to a folder instead (no Hub needed), to read the card before publishing.
"""

from __future__ import annotations

import argparse

from frs_hf import SmoothedModelForSequenceClassification
from frs_hf.data import load_any_dataset
from frs_hf.evaluation import certify_dataset


def main(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="Smoothed checkpoint: folder, Hub id or packaged:minilm.")
    p.add_argument("--repo-id", default=None, help="Hub repo to push to (owner/name).")
    p.add_argument("--local-dir", default=None, help="Write the files here instead of pushing.")
    p.add_argument("--certify", default=None, help="Dataset whose test split is certified for the card.")
    p.add_argument("--split", default="test")
    p.add_argument("--num-examples", type=int, default=200)
    args = p.parse_args(argv)
    if (args.repo_id is None) == (args.local_dir is None):
        p.error("give exactly one of --repo-id and --local-dir")

    smoothed = SmoothedModelForSequenceClassification.from_pretrained(args.model)
    if args.certify:
        data = load_any_dataset(args.certify, split=args.split)
        data = data.select(range(min(args.num_examples, len(data))))
        report = certify_dataset(smoothed, data, dataset_name=args.certify, split=args.split, sequential=True)
        print(f"certified accuracy: {report.summary['certified_accuracy']}")
    if args.local_dir:
        smoothed.save_pretrained(args.local_dir)
        print(f"wrote {args.local_dir} (README.md is the model card)")
        return None
    info = smoothed.push_to_hub(args.repo_id)
    print(f"pushed: {info.commit_url}")
    return info


if __name__ == "__main__":
    main()
