"""Certified predictions with the ``frs-certified-classification`` pipeline.

    python examples/pipeline.py --model frs-sentiment "a gripping, beautifully acted film" "dull and tedious"

``import frs_hf`` registers the task; the checkpoint's ``frs_config.json`` sets the smoothing, and any
``FRSConfig`` field can be given per call (here ``n`` and ``sequential``). Each output says whether the
prediction is certified, its radius (word edits anywhere) and, with fuzzing, the flagged spans.
"""

from __future__ import annotations

import argparse

from transformers import pipeline

import frs_hf  # noqa: F401  (registers the task)
from frs_hf.packaged import resolve_model


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="Smoothed checkpoint: folder, Hub id or packaged:minilm.")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("texts", nargs="+")
    args = p.parse_args(argv)

    classifier = pipeline("frs-certified-classification", model=resolve_model(args.model))
    outputs = classifier(args.texts, n=args.n, sequential=True)
    for text, out in zip(args.texts, outputs, strict=True):
        verdict = "abstained" if out["abstained"] else f"{out['label']} (radius {out['radius']})"
        print(f"{verdict:<28} {out['num_forwards']:>5} forwards  {text}")
    return outputs


if __name__ == "__main__":
    main()
