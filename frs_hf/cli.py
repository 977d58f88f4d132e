"""``frs-hf``: a thin command line over the public API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence

from transformers import HfArgumentParser

from .config import FRSConfig, flat_fields
from .packaged import PACKAGED_MODELS, resolve_model


def _frs_arguments() -> type:
    """FRSConfig's settings under their flat names (``--omega_low``, ``--fuzzing_budget``...) as a dataclass for
    ``HfArgumentParser``, each defaulting to None: an unset flag keeps the model's own setting."""
    fields = []
    for name, kind, f in flat_fields():
        metadata = dict(f.metadata)
        if kind is bool:  # `--fuzzing` alone means true; `--fuzzing false` and `--no_fuzzing` false
            metadata.update(nargs="?", const=True, help=f"{metadata['help']} (--no_{name}: false)")
        fields.append((name, kind | None, dataclasses.field(default=None, metadata=metadata)))
    cls = dataclasses.make_dataclass("FRSArguments", fields)
    cls._argument_group_name = "FRS settings (default: the model's frs_config.json, else FRSConfig())"
    return cls


def _add_negations(parser: argparse.ArgumentParser) -> None:
    """``--no-X`` for every FRS on/off setting (``--no-sequential``, ``--no-deduplicate``)."""
    for name, kind, _ in flat_fields():
        if kind is bool:
            flags = (f"--no_{name}", f"--no-{name.replace('_', '-')}")
            parser.add_argument(
                *flags, dest=name, action="store_false", default=argparse.SUPPRESS, help=argparse.SUPPRESS
            )


def _frs_settings(args: argparse.Namespace) -> dict:
    """The FRS settings given on the command line, by their flat names."""
    return {name: getattr(args, name) for name, _, _ in flat_fields() if getattr(args, name, None) is not None}


def _certify(args: argparse.Namespace) -> int:
    from .modeling import SmoothedModelForSequenceClassification

    texts = list(args.text or [])
    if args.file:
        with open(args.file, encoding="utf-8") as f:
            texts += [line.rstrip("\n") for line in f if line.strip()]
    if bool(texts) == bool(args.dataset):
        raise ValueError("give texts (--text / --file) or a --dataset, not both.")
    model_kwargs = {"num_labels": args.num_labels} if args.num_labels else {}
    smoothed = SmoothedModelForSequenceClassification.from_pretrained(resolve_model(args.model), **model_kwargs)
    smoothed.frs_config = smoothed.frs_config.replace_flat(**_frs_settings(args))
    if args.dataset:
        return _certify_dataset(smoothed, args)
    method = smoothed.predict if args.predict_only else smoothed.certify
    for text, result in zip(texts, method(texts), strict=True):
        print(json.dumps({"text": text, **result.to_dict()}))
    return 0


def _certify_dataset(smoothed, args: argparse.Namespace) -> int:
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
        overwrite=args.overwrite,
        dataset_name=args.dataset,
        split=args.split,
    )
    state = PartialState()
    if state.is_main_process:
        print(json.dumps({k: v for k, v in report.summary.items() if k != "config"}, indent=2))
    state.destroy_process_group()  # a gloo group left to the interpreter's exit can abort it (SIGABRT)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from .data import load_any_dataset, require_columns
    from .modeling import SmoothedModelForSequenceClassification

    path = resolve_model(args.model)
    output = args.output or (path if os.path.isdir(path) and path == args.model else None)
    if output is None:
        raise ValueError(f"{args.model} is not a local model directory: give --output for frs_config.json.")
    if args.num_texts < 1 or args.reference_texts < 0:
        raise ValueError(
            f"--num-texts must be at least 1 and --reference-texts at least 0, got {args.num_texts} and "
            f"{args.reference_texts}."
        )
    dataset = load_any_dataset(args.dataset, split=args.split)
    require_columns(dataset, args.text_column, what=args.dataset)
    dataset = dataset.shuffle(seed=args.seed).select(range(min(args.num_texts + args.reference_texts, len(dataset))))
    texts = list(dataset[args.text_column])
    references, texts = texts[: args.reference_texts], texts[args.reference_texts :]
    if not texts:
        raise ValueError(f"{args.dataset}/{args.split} has no texts left for the floor after the references.")
    smoothed = SmoothedModelForSequenceClassification.from_pretrained(path)
    if references:  # the floor is then fitted with the transplant test on, as certify will run it
        smoothed.frs_config = smoothed.frs_config.replace(fuzzing_config={"reference_texts": references})
    before = smoothed.frs_config.fuzzing_config.min_kl
    floor = smoothed.calibrate_fuzzing(texts, empty_fraction=args.empty_fraction, by_class=args.by_class)
    smoothed.frs_config.save_pretrained(output)
    where = "of each predicted class among" if args.by_class else "of"
    print(
        f"fuzzing_min_kl: {before} -> {floor} nats (at least {args.empty_fraction:.0%} {where} {len(texts)} texts "
        f"of {args.dataset}/{args.split} get no area)"
        + (f"; {len(references)} more kept as the transplant test's reference_texts" if references else "")
        + f"; wrote {os.path.join(output, 'frs_config.json')}"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    from .attacks import get_attack
    from .baselines import DEFENSES, build_defense
    from .data import load_any_dataset
    from .evaluation import backdoor_test_sets, evaluate_defenses
    from .evaluation.report import clear_partial

    names = [name.strip() for name in args.defenses.split(",") if name.strip()]
    unknown = [name for name in names if name not in DEFENSES]
    if unknown:
        raise ValueError(f"Unknown defense(s) {', '.join(unknown)}; choose from {', '.join(DEFENSES)}.")
    attack = get_attack(args.attack, **{"target_label": args.target_label, **json.loads(args.attack_kwargs)})
    data = load_any_dataset(args.dataset)
    test = data[args.split] if args.split in data else None
    if test is None:
        raise ValueError(f"Split {args.split!r} not found in {args.dataset}; available: {', '.join(data)}.")
    clean_texts, clean_labels, triggered_texts, triggered_labels = backdoor_test_sets(
        test, attack, num_examples=args.num_examples, text_column=args.text_column, label_column=args.label_column
    )
    path = resolve_model(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(path)
    num_labels = model.config.num_labels
    outside = sorted({y for y in [*clean_labels, *triggered_labels, attack.target_label] if not 0 <= y < num_labels})
    if outside:
        raise ValueError(
            f"Label(s) {outside} of {args.dataset} (or --target-label) are not classes of {args.model}, which has "
            f"{num_labels} (ids 0-{num_labels - 1}): clean and attack success rates would be meaningless."
        )
    tokenizer = AutoTokenizer.from_pretrained(path)
    frs_config = (FRSConfig.from_pretrained(path, missing_ok=True) or FRSConfig()).replace_flat(**_frs_settings(args))
    shared = {"frs_config": frs_config}
    if "strip" in names:  # held-out clean texts from the training split: never the test texts
        if "train" not in data or args.split == "train":
            raise ValueError(
                "STRIP calibrates on held-out clean texts: the dataset needs a train split besides --split."
            )
        train = data["train"].shuffle(seed=0).select(range(min(args.strip_texts, len(data["train"]))))
        shared["clean_texts"] = list(train[args.text_column])
    if "onion" in names and args.lm:  # loaded once for every seed
        lm_path = resolve_model(args.lm)
        shared["lm"], shared["lm_tokenizer"] = (
            AutoModelForCausalLM.from_pretrained(lm_path),
            AutoTokenizer.from_pretrained(lm_path),
        )
    options = {"uniform-deletion": {"rate": args.uniform_rate}, "uniform-masking": {"rate": args.masking_rate}}

    def factory(name: str):
        return lambda seed: build_defense(name, model, tokenizer, seed=seed, **shared, **options.get(name, {}))

    report = evaluate_defenses(
        {name: factory(name) for name in names},
        clean_texts,
        clean_labels,
        triggered_texts,
        triggered_labels,
        attack.target_label,
        seeds=args.seeds,
        max_radius=args.max_radius,
        texts_per_call=args.texts_per_call,
        metadata={
            "model": args.model,
            "dataset": args.dataset,
            "split": args.split,
            "attack": args.attack,
            "frs_config": frs_config.to_dict(),
            "defense_options": {**options, "strip_texts": args.strip_texts, "lm": args.lm},
        },
        output_dir=args.output,
        overwrite=args.overwrite,
    )
    code = _print_report(report, args)
    if args.output:
        clear_partial(args.output)
    return code


def _merge_reports(args: argparse.Namespace) -> int:
    from .evaluation import BackdoorReport

    report = BackdoorReport.merge([BackdoorReport.load(path) for path in args.reports], seeds=args.seeds)
    return _print_report(report, args)


def _print_report(report, args: argparse.Namespace) -> int:
    print(report.to_markdown())
    if args.output:
        paths = report.save(args.output, plot=not args.no_plot)
        print("Wrote " + ", ".join(paths.values()))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .evaluation.demo import DemoConfig, run_demo

    config = DemoConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DemoConfig)})
    report = run_demo(config)
    print(report.to_markdown())
    seconds = report.metadata["total_seconds"]
    print(f"Demo finished in {seconds / 60:.1f} min; report and models in {os.path.abspath(config.output_dir)}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frs-hf", description="Fuzzed Randomized Smoothing for HF text classifiers.")
    # Every sub-command's parser is an HfArgumentParser: dataclass fields become flags with their help.
    sub = parser.add_subparsers(dest="command", required=True, parser_class=HfArgumentParser)
    frs_arguments = _frs_arguments()
    certify = sub.add_parser(
        "certify",
        dataclass_types=[frs_arguments],
        help="Certify texts (one JSON result per line) or a dataset (reports and a summary).",
    )
    certify.add_argument(
        "--model",
        required=True,
        help=f"Local path or Hub id of a sequence classifier, or packaged offline: {' / '.join(PACKAGED_MODELS)}.",
    )
    _add_negations(certify)
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
    data.add_argument(
        "--output",
        help="Directory for certify.tsv, results.jsonl and summary.json; each batch is saved as it finishes, and "
        "the same command run again resumes there.",
    )
    data.add_argument(
        "--overwrite", action="store_true", help="Replace the results of a different run found in --output."
    )
    certify.add_argument("--num-labels", type=int, help="Number of labels for a checkpoint without a trained head.")
    certify.add_argument("--predict-only", action="store_true", help="Smoothed prediction with abstention, no radius.")
    certify.set_defaults(func=_certify)

    calibrate = sub.add_parser(
        "calibrate",
        help="Fit fuzzing_min_kl to a model on clean held-out texts (and keep some as the transplant test's "
        "references) and write it to the model's frs_config.json.",
    )
    calibrate.add_argument("--model", required=True, help="A local model directory (or any model with --output).")
    calibrate.add_argument("--dataset", required=True, help="Packaged name, local csv/tsv/jsonl, or Hub name.")
    calibrate.add_argument("--split", default="validation", help="A split of clean texts (default: validation).")
    calibrate.add_argument("--text-column", default="text")
    calibrate.add_argument("--num-texts", type=int, default=200, help="Texts used (a seeded sample).")
    calibrate.add_argument(
        "--empty-fraction", type=float, default=0.8, help="Share of the texts that must get no area (default 0.8)."
    )
    calibrate.add_argument(
        "--by-class",
        action="store_true",
        help="Reach --empty-fraction within each class the model predicts, not over the mixed texts.",
    )
    calibrate.add_argument(
        "--reference-texts",
        type=int,
        default=0,
        help="Also keep this many other texts of the sample as fuzzing_reference_texts, the transplant test's "
        "references (8-16 per class; docs/fuzzing.md). They are saved in frs_config.json.",
    )
    calibrate.add_argument("--seed", type=int, default=0, help="Seed of the sample of texts.")
    calibrate.add_argument("--output", help="Directory for frs_config.json (default: the model directory).")
    calibrate.set_defaults(func=_calibrate)

    evaluate = sub.add_parser(
        "evaluate",
        dataclass_types=[frs_arguments],
        help="Backdoor evaluation of a classifier: clean accuracy, attack success rate and certified accuracy "
        "under each defense, over seeds; Markdown table, JSON and PNG.",
    )
    _add_negations(evaluate)
    evaluate.add_argument(
        "--model", required=True, help="The (possibly backdoored) classifier: path, Hub id or packaged:minilm."
    )
    evaluate.add_argument("--dataset", default="rotten_tomatoes", help="Packaged name, local file or Hub dataset.")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--text-column", default="text")
    evaluate.add_argument("--label-column", default="label")
    evaluate.add_argument("--attack", default="badnet", help="Attack whose trigger goes into the test texts.")
    evaluate.add_argument(
        "--attack-kwargs", default="{}", help='JSON settings of the attack, e.g. \'{"triggers": ["cf"]}\'.'
    )
    evaluate.add_argument("--target-label", type=int, default=1)
    evaluate.add_argument(
        "--defenses",
        default="none,uniform-deletion,frs",
        help="Comma-separated, from: none, uniform-deletion, uniform-masking, strip, onion, frs.",
    )
    evaluate.add_argument("--seeds", type=int, nargs="+", default=[0], help="One run per seed (intervals over seeds).")
    evaluate.add_argument("--num-examples", type=int, default=200, help="Clean and triggered test texts (each).")
    evaluate.add_argument("--max-radius", type=int, default=3)
    evaluate.add_argument("--texts-per-call", type=int, default=32)
    evaluate.add_argument("--uniform-rate", type=float, default=0.5, help="Deletion rate of uniform-deletion.")
    evaluate.add_argument("--masking-rate", type=float, default=0.5, help="Masking rate of uniform-masking.")
    evaluate.add_argument("--strip-texts", type=int, default=400, help="Held-out clean training texts for STRIP.")
    evaluate.add_argument("--lm", help="Causal LM for ONION (path or Hub id; default: the packaged SmolLM2).")
    evaluate.add_argument(
        "--output",
        help="Directory for report.md, report.json and report.png; chunks are saved as they finish, and the same "
        "command run again resumes there.",
    )
    evaluate.add_argument("--overwrite", action="store_true", help="Replace another evaluation found in --output.")
    evaluate.add_argument("--no-plot", action="store_true", help="Skip the PNG (no matplotlib needed).")
    evaluate.set_defaults(func=_evaluate)

    merge = sub.add_parser(
        "merge-reports",
        help="One table from `frs-hf evaluate` reports of different models (e.g. one per training seed), "
        "with intervals over the models.",
    )
    merge.add_argument("reports", nargs="+", help="Report folders or report.json files, one model each.")
    merge.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="The model seed of each report (default 0, 1, ...; repeat one to join "
        "reports of the same model that hold different defenses).",
    )
    merge.add_argument("--output", help="Directory for report.md, report.json and report.png.")
    merge.add_argument("--no-plot", action="store_true", help="Skip the PNG (no matplotlib needed).")
    merge.set_defaults(func=_merge_reports)

    from .evaluation.demo import DemoConfig

    demo = sub.add_parser(
        "demo",
        dataclass_types=[DemoConfig],
        help="Offline end-to-end demo: BadNet-poison Rotten Tomatoes, train an undefended and an FRS model, "
        "evaluate no defense / uniform smoothing / FRS, write the report (about 10 min on 2 CPU cores).",
    )
    demo.set_defaults(func=_demo)
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
