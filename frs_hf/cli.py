"""``frs-hf``: a thin command line over the public API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from .config import FRSConfig
from .packaged import PACKAGED_MODELS, resolve_model

PACKAGED_MODEL = "packaged:minilm"


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per scalar FRSConfig field, with the field's help text; unset flags keep the
    model's saved settings."""
    group = parser.add_argument_group("FRS settings (default: the model's frs_config.json, else FRSConfig())")
    for f in dataclasses.fields(FRSConfig):
        flag, kind = "--" + f.name.replace("_", "-"), f.type.split(" ")[0]  # e.g. "int | None" -> "int"
        if kind == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f.metadata["help"])
        elif kind in ("int", "float"):
            group.add_argument(flag, type=int if kind == "int" else float, default=None, help=f.metadata["help"])


def _certify(args: argparse.Namespace) -> int:
    from .modeling import SmoothedModelForSequenceClassification

    texts = list(args.text or [])
    if args.file:
        with open(args.file, encoding="utf-8") as f:
            texts += [line.rstrip("\n") for line in f if line.strip()]
    if bool(texts) == bool(args.dataset):
        raise SystemExit("frs-hf certify: give texts (--text / --file) or a --dataset, not both.")
    model_kwargs = {"num_labels": args.num_labels} if args.num_labels else {}
    smoothed = SmoothedModelForSequenceClassification.from_pretrained(resolve_model(args.model), **model_kwargs)
    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(FRSConfig)}
    if args.dataset:
        return _certify_dataset(smoothed, args, overrides)
    method = smoothed.predict if args.predict_only else smoothed.certify
    for text, result in zip(texts, method(texts, **overrides), strict=True):
        print(json.dumps({"text": text, **result.to_dict()}))
    return 0


def _certify_dataset(smoothed, args: argparse.Namespace, overrides: dict) -> int:
    """Runs on every process of ``accelerate launch`` / ``torchrun``; the main one reports."""
    from accelerate import PartialState

    from .data import load_any_dataset
    from .evaluation import certify_dataset

    dataset = load_any_dataset(args.dataset, split=args.split)
    report = certify_dataset(
        smoothed,
        dataset,
        args.text_column,
        args.label_column,
        texts_per_call=args.texts_per_call,
        output_dir=args.output,
        predict_only=args.predict_only,
        dataset_name=args.dataset,
        split=args.split,
        **overrides,
    )
    if PartialState().is_main_process:
        print(json.dumps({k: v for k, v in report.summary.items() if k != "config"}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frs-hf", description="Fuzzed Randomized Smoothing for HF text classifiers.")
    sub = parser.add_subparsers(dest="command", required=True)
    certify = sub.add_parser(
        "certify", help="Certify texts (one JSON result per line) or a dataset (reports and a summary)."
    )
    certify.add_argument(
        "--model",
        required=True,
        help=f"Local path or Hub id of a sequence classifier, or packaged offline: {' / '.join(PACKAGED_MODELS)}.",
    )
    certify.add_argument("--text", action="append", help="A text to certify (repeatable).")
    certify.add_argument("--file", help="A UTF-8 file with one text per line.")
    data = certify.add_argument_group(
        "Certifying a dataset (under accelerate launch / torchrun: split across processes)"
    )
    data.add_argument(
        "--dataset", help="Packaged name (rotten_tomatoes, imdb, bbc_news), local csv/tsv/jsonl, or Hub name."
    )
    data.add_argument("--split", default="test", help="Dataset split (default: test).")
    data.add_argument("--text-column", default="text")
    data.add_argument("--label-column", default="label")
    data.add_argument(
        "--texts-per-call", type=int, default=32, help="Texts certified together (copies share forwards)."
    )
    data.add_argument("--output", help="Directory for certify.tsv, results.jsonl and summary.json.")
    certify.add_argument("--num-labels", type=int, help="Number of labels for a checkpoint without a trained head.")
    certify.add_argument("--predict-only", action="store_true", help="Smoothed prediction with abstention, no radius.")
    _add_config_arguments(certify)
    certify.set_defaults(func=_certify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, ImportError) as err:
        print(f"frs-hf {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
