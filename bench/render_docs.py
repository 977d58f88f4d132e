"""docs/benchmarks.md, generated from the results files in ``bench/results/``.

Every table of the page comes from one or more ``bench/results/*.json`` files, and so does the command
shown with it. Two kinds of file:

- written by a bench script (``operating_point-*.json``, ``sequential-*.json``): command, machine,
  commit, settings and the raw results; their tables are printed by the script's own ``print_table``;
- transcribed (``"source"`` says so): command, machine, commit and the table itself as ``columns`` +
  ``rows`` (cells: a number, ``null`` for "–", a string, a list of numbers shown as ``a / b``,
  ``{"value", "interval"}`` shown as ``v [lo, hi]``, or ``{"value", "n"}`` shown as ``v (n)``;
  ``formats`` gives a column's number format where trailing zeros matter).

The prose of each section lives in ``SECTIONS`` below.

    python bench/render_docs.py           # rewrite docs/benchmarks.md
    python bench/render_docs.py --check   # exit 1 if docs/benchmarks.md is out of date
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
DOC = BENCH.parent / "docs" / "benchmarks.md"


def load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


# --- cells and tables of transcribed results ---------------------------------------------------------------


def number(value: float | int, fmt: str | None) -> str:
    return fmt.format(value) if fmt else str(value)


def cell(value, fmt: str | None = None) -> str:
    """One table cell as the page shows it (see the module docstring for the cell kinds)."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " / ".join(number(v, fmt) for v in value)
    if isinstance(value, dict):
        shown = number(value["value"], fmt)
        if "interval" in value:
            low, high = value["interval"]
            return f"{shown} [{number(low, fmt)}, {number(high, fmt)}]"
        return f"{shown} ({value['n']})"
    return number(value, fmt)


def markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def table(data: dict) -> str:
    """A transcribed results file's table."""
    formats = data.get("formats", {})
    rows = [[cell(v, formats.get(c)) for c, v in zip(data["columns"], row, strict=True)] for row in data["rows"]]
    return markdown_table(data["columns"], rows)


# --- tables of the bench scripts' own results files ---------------------------------------------------------


def printed(function: Callable, *args) -> str:
    """What a bench script's table printer prints, without its leading blank line."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        function(*args)
    return out.getvalue().strip("\n")


def drop_column(markdown: str, name: str, when: str = "0") -> str:
    """``markdown`` without column ``name`` if every row has ``when`` there (an all-zero column says nothing)."""
    lines = markdown.split("\n")
    rows = [line.strip("|").split(" | ") for line in lines]
    rows = [[c.strip() for c in row] for row in rows]
    if name not in rows[0]:
        return markdown
    k = rows[0].index(name)
    if any(row[k] != when for row in rows[2:]):
        return markdown
    return markdown_table(rows[0][:k] + rows[0][k + 1 :], [r[:k] + r[k + 1 :] for r in rows[2:]])


def operating_point(results: list[dict]) -> str:
    """``bench/operating_point.py --from-results``: the certification table, and the backdoor table if any."""
    from operating_point import print_backdoor_table, print_table

    records = [r for data in results for r in data["records"]]
    radii = results[0]["settings"]["radii"]
    tables = [printed(print_table, records, radii), printed(print_backdoor_table, records)]
    return "\n\n".join(t for t in tables if t)


def drop_in(results: list[dict]) -> str:
    """``bench/drop_in.py``'s table over several runs (a way measured again in a later run: its first record)."""
    from drop_in import print_table

    records = {(r["training"], r["seed"]): r for data in reversed(results) for r in data["records"]}
    return printed(print_table, list(records.values()))


def sequential(results: list[dict]) -> str:
    """``bench/sequential.py``'s table of one run."""
    from sequential import print_table

    (data,) = results
    return drop_column(printed(print_table, data["runs"], data["settings"]["radii"]), "fuzzing forwards / text")


def fuzzing_forwards(results: list[dict]) -> str:
    """The sequential run at the defaults without fuzzing, and with each area finder."""
    columns = [
        "fuzzing",
        "cert. acc. r≥0",
        "abstain",
        "copies / text",
        "smoothing forwards / text",
        "fuzzing forwards / text",
        "mutations answered / text",
        "all forwards / text",
        "time (s)",
    ]
    rows = []
    for data in results:
        settings, run = data["settings"], data["runs"]["sequential"]
        name = settings["fuzzing_method"] if settings["fuzzing"] else "none"
        cells = [f"{100 * run['certified_accuracy']['0']:.1f}", f"{100 * run['abstain']:.1f}"]
        cells += [f"{v:.0f}" for v in (run["copies"], run["forwards"], run["fuzzing_forwards"])]
        cache = data.get("fuzzing_cache")  # the search's cache: repeated mutations cost no forward
        cells.append(f"{cache['queries_per_text']:.0f}" if cache else "–")
        cells += [f"{run['forwards'] + run['fuzzing_forwards']:.0f}", f"{run['seconds']:.0f}"]
        rows.append([name, *cells])
    return markdown_table(columns, rows)


def futility(results: list[dict]) -> str:
    """``bench/sequential.py --simulate``: texts certified and copies per text under each stopping rule."""
    (data,) = results
    radii = next(iter(data["rows"].values()))["certified"]
    columns = ["way", *(f"certified r≥{r}" for r in radii), "copies / text", "copies / abstained text"]
    rows = [
        [name, *(f"{100 * v:.1f}" for v in row["certified"].values()), f"{row['copies']:.0f}"]
        + [f"{row['copies_abstained']:.0f}"]
        for name, row in data["rows"].items()
    ]
    return markdown_table(columns, rows)


def throughput(results: list[dict]) -> str:
    """``bench/distributed.py --output``: certified examples per minute per setup, one row per results file."""
    columns = ["certification", "1 process × 1 thread", "2 processes × 1 thread", "1 process × 2 threads"]
    columns += ["2 / 1 process", "identical counts"]
    rows = []
    for data in results:
        settings, setups = data["settings"], data["setups"]
        way = "sequential" if settings["sequential"] else f"fixed n0 + n = {settings['n0']} + {settings['n']}"
        rates = [setups[k]["examples_per_minute"] for k in ("1 x 1", "2 x 1", "1 x 2")]
        rows.append(
            [way, *(f"{r:.1f}" for r in rates), f"{rates[1] / rates[0]:.2f}×"]
            + [f"{data['identical_counts']}/{data['examples']}"]
        )
    return markdown_table(columns, rows)


def backdoor_report(results: list[dict]) -> str:
    """A ``BackdoorReport`` saved as a results file (``frs-hf demo``'s ``report.json`` plus the command)."""
    import tempfile

    from frs_hf.evaluation import BackdoorReport

    (data,) = results
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(data, f)
        f.flush()
        return BackdoorReport.load(f.name).to_markdown().strip()


def memory(results: list[dict]) -> str:
    """``bench/sequential.py --memory``: peak RSS of one long text at two values of n."""
    (data,) = results
    rows = [
        [f"{int(n):,}", f"{row['forwards']:,}", f"{row['peak_rss_mb']:.0f} MB", f"{row['rss_before_mb']:.0f} MB"]
        for n, row in data["rows"].items()
    ]
    return markdown_table(["n", "forwards", "peak RSS", "RSS before `certify`"], rows)


def transcribed(results: list[dict]) -> str:
    (data,) = results
    return table(data)


def checkpoints(results: list[dict]) -> str:
    """``checkpoint_poisoning`` files (one dataset each; the attack in the settings or per row) as one table."""
    columns = ["dataset", "attack", "model", "CA", "ASR", "seconds"]
    rows = []
    for data in results:
        formats = data.get("formats", {})
        for row in data["rows"]:
            cells = {c: cell(v, formats.get(c)) for c, v in zip(data["columns"], row, strict=True)}
            cells.setdefault("attack", data["settings"].get("attack"))
            rows.append([data["settings"]["dataset"], *(cells[c] for c in columns[1:])])
    return markdown_table(columns, rows)


# --- the page ----------------------------------------------------------------------------------------------------


@dataclass
class Table:
    files: list[str]
    render: Callable[[list[dict]], str] = transcribed
    caption: str = ""
    before: list[str] = field(default_factory=list)  # commands shown before the results files' own
    after: list[str] = field(default_factory=list)  # ... and after them


@dataclass
class Section:
    title: str
    intro: str
    tables: list[Table]
    notes: list[str]
    level: int = 2


def commands(results: list[dict], before: list[str], after: list[str]) -> list[str]:
    """The commands of a table: ``before``, those its results files record (a string or a list), ``after``."""
    found = []
    for data in results:
        command = data["command"]
        found += [command] if isinstance(command, str) else command
    return before + found + after


def fill(text: str, indent: str = "", width: int = 110) -> str:
    """One paragraph of prose over lines of at most ``width`` characters (continuations get ``indent``)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return ("\n" + indent).join(lines)


def prose(text: str) -> str:
    """Paragraphs (separated by blank lines), each filled."""
    return "\n\n".join(fill(p) for p in re.split(r"\n\s*\n", text.strip()))


def render_section(section: Section) -> str:
    """Title, intro, the commands of all its tables, each table (with its caption), then the notes."""
    results = [[load(f) for f in t.files] for t in section.tables]
    shown = [c for t, res in zip(section.tables, results, strict=True) for c in commands(res, t.before, t.after)]
    parts = ["#" * section.level + " " + section.title, prose(section.intro)]
    if shown:
        unique: dict[str, str] = {}  # without its comment -> the command as shown (the commented one wins)
        for command in shown:
            base = command.partition("   #")[0]
            unique[base] = command if len(command) > len(unique.get(base, "")) else unique[base]
        parts.append("```bash\n" + "\n".join(unique.values()) + "\n```")
    for t, res in zip(section.tables, results, strict=True):
        if t.caption:
            parts.append(prose(t.caption))
        parts.append(t.render(res))
    if section.notes:
        parts.append("What this shows:\n\n" + "\n".join("- " + fill(note, "  ") for note in section.notes))
    return "\n\n".join(parts)


# --- the page's prose: one Section per scenario, in page order -------------------------------------------------

INTRO = """
What the scripts in `bench/` measured (`bench/README.md` describes them). This page is generated by `python
bench/render_docs.py` from `bench/results/*.json` (edit the prose there, not here): every table comes from
those files, and the commands shown with it are the ones they record, with the machine and the commit. Files
written by a bench script keep its raw results; transcribed ones, from runs whose raw output was not kept, the
table only.

Machine: x86_64, 2 cores, no GPU, torch 2.13.0 (CPU build), mostly 1 torch thread per run with other runs
sharing the cores: seconds are indicative; overheads are ratios against a baseline interleaved with the run.
"""

OP_SETUP = """
What does a deletion rate that can certify an edit anywhere cost? `radius ≥ r` needs `p̲_A > 1.5 − ω^r`
(docs/theory.md): no radius ≥ 1 at `ω ≤ 0.5` (the default `omega_low = 0.1` certifies radius 0 only), `r ≥ 2`
needs `ω > 0.71`, and at `ω = 0.7 / 0.8 / 0.9` radius 1 needs `p̲_A > 0.80 / 0.70 / 0.60`.

Packaged MiniLM on the whole Rotten Tomatoes training split. Undefended: `Trainer`, 1 epoch, lr 5e-5. FRS:
`FRSTrainer` at the certification rate ω, 3 epochs, lr 1e-4, then certified with uniform deletion at ω on 200
test sentences, fixed `n0 = 100`, `n = 1000`, `α = 0.001`, abstentions counted wrong. Plain CA is on the whole
test split (and on the 200 certified sentences). "CA, fallback=True" answers each abstention with the FRS-trained
model's own prediction on the whole text, as `FRSConfig(fallback=True)` does, and "CA, abstain → undefended model"
with the undefended model's; those answers carry no certificate. Plot:
`bench/results/operating_point-rotten_tomatoes.png`.
"""

FUZZ_SETUP = """
The BadNet and AddSent MiniLMs of `bench/backdoor.py` (1 epoch of `Trainer` on the Rotten Tomatoes train split,
10% poisoned: BadNet inserts 1–3 of `cf mn bb tq mb`, AddSent "I watched this 3D movie"); 200 triggered negative
test sentences and the same 200 without the trigger. Default settings, budget 64; `mcts-partners` adds partner
words. *Capture*: the area holds every trigger word (*flipped* / *trigger matters*: on the texts where the
trigger alone flips the model / moves it by ≥ 1 nat). Misses: *floor* (deleting the trigger moves the model by
less than `min_kl`), *inert* (a missed word that changes nothing), *search*. *Clean area*: the share of a clean
sentence's words flagged; *clean empty*: clean sentences with none.
"""

BACKDOOR_SETUP = """
(A) a poisoned checkpoint (previous section) cleanly fine-tuned by the victim; (B) poisoned fine-tuning data,
`Trainer` against `FRSTrainer`; (C) inference only, FRS through `pipeline("frs-certified-classification")`.
Every defense gets the same test texts and n = 200, n0 = 20, α = 0.05: FRS at ω_low = 0.2 outside the fuzzed
area and 0.95 inside it (MCTS, budget 64, floor 1 nat), uniform deletion and masking at 0.5, STRIP at 5% false
rejections, ONION with SmolLM2-135M. Columns as in `frs-hf evaluate` (docs/evaluation.md); the ASR floor is the
ASR on clean non-target texts, PA the triggered texts given their true label, – not measured or not
applicable. A table may join several runs on the same model and texts. Tables "with the transplant test" give FRS
16 clean training texts as references (`--reference-texts 16`; partner words on with them). The FRS rows of the
Rotten Tomatoes tables and of IMDB (C) BadNet use the current fuzzer, those of the other BBC News and IMDB tables
an earlier one (less capture on IMDB). The goals: FRS's ASR ≤ 5% with CA within 1 point of undefended, and FRS
ahead of uniform smoothing.
"""


DROP_IN_NOTES = [
    "**The swap costs 0.9 points of plain accuracy at `FRSTrainer`'s defaults** (`omega_low = 0.1`; goal: at "
    "most 1, three seeds); at 0.2 it cost 1.9, and 1.5 with half the examples left whole (second file, rows not "
    "measured again). The seed spread of one recipe (77.0–80.4%) is larger than either difference.",
    "Training at a certifying rate in the same short recipe (`omega_low = 0.8`, half the examples whole: the "
    "recipe whose checkpoints, after 8 epochs on the whole split, are as accurate smoothed at 0.2 as the plain "
    "model) costs 3.7 points, so `FRSTrainer` does not train at a certifying rate by default.",
]


def rt(*names: str) -> list[str]:
    return [f"operating_point-rotten_tomatoes{n}.json" for n in names]


SECTIONS = [
    Section(
        "The demo (`frs-hf demo`)",
        """
        BadNet poisons 10% of the Rotten Tomatoes training sentences (rare trigger words, relabelled positive); the
        packaged MiniLM is fine-tuned on them with `Trainer` (undefended) and with `FRSTrainer` at the defaults,
        and each defense answers 100 clean and 100 triggered test sentences (seed 0, `n = 100`, α = 0.05, FRS's
        fuzzed area deleted at 0.95, `omega_low = 0.1` elsewhere, 16 other test sentences, 8 of each label, as the
        transplant test's references). The README's table.
        """,
        [Table(["demo.json"], backdoor_report)],
        [
            "The backdoor works on the undefended model every time, and uniform deletion at FRS's own `omega_low` "
            "(FRS without its fuzzed area, at the same CA, 82%) leaves it at 100%. FRS takes the attack success "
            "rate from 100% to 21% — under its floor, the smoothed classifier's own error on clean negative "
            "sentences, 23.5% — and gives 77% of the triggered sentences their true label back, for 2 points of "
            "clean accuracy (84% → 82%; 1 point is `FRSTrainer`'s, whose model is 83% unsmoothed). The transplant "
            "test, with its confidence bar, leaves no clean sentence an area, so FRS answers clean sentences as "
            "uniform deletion does. At these defaults every edit-anywhere radius is 0 (certified accuracy 0 at "
            "r ≥ 1); what FRS certifies besides the label is the removal of flagged words, and no clean sentence "
            "keeps any.",
        ],
    ),
    Section(
        "The operating point: accuracy against radius",
        OP_SETUP,
        [
            Table(
                rt(
                    "",
                    "-0.9",
                    "-8ep",
                    "-8ep-s1",
                    "-8ep-s2",
                    "-16ep",
                    "-8ep-whole",
                    "-0.9-8ep",
                    "-consistency",
                    "-whole",
                    "-weight-noise",
                    "-8ep-whole-at-0.2",
                    "-8ep-whole-at-0.2-s1",
                    "-8ep-whole-at-0.2-s2",
                ),
                operating_point,
                after=[
                    "cd bench/results && python ../operating_point.py --from-results "
                    "operating_point-rotten_tomatoes.json operating_point-rotten_tomatoes-{0.9,8ep,8ep-s1,8ep-s2,"
                    "16ep,8ep-whole,0.9-8ep,consistency,whole,weight-noise}.json "
                    "--output operating_point-rotten_tomatoes.png   # the table and the plot"
                ],
            ),
            Table(
                ["operating_point-imdb.json"],
                operating_point,
                caption="IMDB (~230-word reviews): 8,000 training reviews, `max_length = 128`, 100 test reviews:",
            ),
            Table(
                ["operating_point-bbc_news.json"],
                operating_point,
                caption="BBC News (5 topics, ~390-word articles): 2,002 training articles, `max_length = 128`, 4 "
                "epochs for both models (lr 1e-4), 100 test articles:",
            ),
            Table(
                rt(
                    "-badnet",
                    "-badnet-fuzzing",
                    "-badnet-0.8",
                    "-badnet-0.8-balanced",
                    "-badnet-0.8-balanced-fuzzing",
                    "-badnet-0.8-balanced-fuzzing-s1",
                    "-badnet-0.8-balanced-fuzzing-s2",
                    "-badnet-0.8-balanced-fuzzing-0.9",
                    "-badnet-0.8-balanced-at-0.2-fuzzing",
                    "-addsent-fuzzing",
                    "-addsent-balanced-fuzzing",
                ),
                operating_point,
                caption="With BadNet or AddSent in both models' training data (10%, target positive) and 200 "
                'triggered negative test sentences; "balanced labels" rows train with `frs_balance_labels=True`:',
            ),
            Table(
                [
                    "operating_point-bbc_news-badnet.json",
                    "operating_point-bbc_news-badnet-fuzzing.json",
                    "operating_point-bbc_news-addsent.json",
                    "operating_point-bbc_news-addsent-fuzzing-0.95.json",
                    "operating_point-bbc_news-addsent-fuzzing.json",
                    "operating_point-bbc_news-addsent-balanced.json",
                    "operating_point-bbc_news-addsent-balanced-s1.json",
                    "operating_point-bbc_news-addsent-balanced-s2.json",
                ],
                operating_point,
                caption="BBC News with BadNet or AddSent in both models' training data (articles cut to 80 words, "
                "20% poisoned, target entertainment), 100 test articles and 100 triggered ones of the other topics; "
                '"fuzzing" rows certify the same models with FRS proper, the area MCTS finds deleted at 0.95 or '
                '0.99 and every other word at 0.9; "balanced labels" trains with `frs_balance_labels=True`:',
            ),
            Table(
                [
                    "operating_point-imdb-100words.json",
                    "operating_point-imdb-badnet.json",
                    "operating_point-imdb-badnet-whole.json",
                    "operating_point-imdb-badnet-balanced.json",
                    "operating_point-imdb-badnet-balanced-fuzzing.json",
                    "operating_point-imdb-badnet-0.8-balanced.json",
                ],
                operating_point,
                caption="IMDB with BadNet in both models' training data (8,000 reviews cut to 100 words, 20% "
                "poisoned, target positive), 100 test reviews and 100 triggered negative ones; the first row trains "
                'both models on the clean reviews, for reference, and "balanced labels" rows train with '
                "`frs_balance_labels=True`:",
            ),
        ],
        [
            "**Rotten Tomatoes: smoothed CA within 2 points of plain and certified accuracy ≥ 45% at r ≥ 1 / ≥ 30% "
            "at r ≥ 2: both "
            "missed** — CA / r ≥ 1 / r ≥ 2 of 71.8 / 24.3 / 0% at ω = 0.7, 64.3 / 26.5 / 7.7% at 0.8 and 54.0 / 35.5 "
            "/ 19.0% at 0.9 (3 epochs), against a plain CA of 81.8%. Two copies with a consistency loss, or weight "
            "noise, stay within the seed spread (about ±1.5 points).",
            "**Longer training is the one lever that moved certified accuracy**: 8 epochs instead of 3 (each epoch "
            "draws new deletion copies) certify r ≥ 1 on 31.3% of the sentences at ω = 0.8 (mean of 3 seeds, "
            "against 26.5%; every seed gains 3–6 points) with smoothed CA 67.2% (64.3%) and r ≥ 2 9.2% (7.7%); at ω "
            "= 0.9 (one seed), r ≥ 1 / 2 / 3 on 38.0 / 23.0 / 16.5% (35.5 / 19.0 / 15.5%) at CA 56.5% (54.0%). "
            "It saturates: 16 epochs (ω = 0.8, seed 0) certify r ≥ 1 on 31.5%, as 8 did, at CA 66.5% (64.0%); "
            "whole texts mixed in (8 epochs, `frs_clean_fraction=0.5`, 3 seeds) keep plain accuracy (83.6%) but "
            "certify less (r ≥ 1 / 2: 29.0 / 6.2%). Still short of the goals.",
            "**Whole texts in training** keep plain accuracy (83.5%) and raise smoothed CA to 74.0% for 2 points at "
            "r ≥ 1: to certify edits anywhere, train with `FRSTrainingArguments(frs_config=FRSConfig(omega_low=0.7), "
            "frs_clean_fraction=0.5)` and certify at the same rate.",
            "**One model for both rates**: the models trained at 0.8 with whole texts mixed in (8 epochs, "
            "`frs_clean_fraction=0.5`), certified at 0.2 instead, are as accurate as the plain model: "
            "smoothed CA 81.7% against 81.8% for the undefended model on the same sentences (3 seeds, 2.7% "
            "abstaining), where the same checkpoints certify r ≥ 1 on 29.0% at 0.8. Train once at the certifying "
            "rate and choose the rate per call (`smoothed.certify(text, omega_low=0.8)`): the rate that keeps "
            "the plain model's accuracy, or the one that covers edits anywhere at the cost above. That holds on "
            "clean training data with uniform deletion. On "
            "poisoned data it does not carry over to FRS at the default rate: the BadNet model trained at 0.8 "
            "(balanced labels, whole 0.5), certified at 0.2 with the fuzzed area at 0.95, takes the ASR to its "
            "floor (20.5% against 24.8%) but keeps a smoothed CA of only 64.5% (seed 0): the area takes opinion "
            "words out of clean sentences.",
            "**`fallback=True` closes the clean-accuracy gap, not the certificate gap.** Answering each abstention "
            "with the FRS-trained model's own prediction on the whole text (a model trained with whole texts mixed "
            "in, so that it stays as accurate as the undefended one): at ω = 0.7 (3 epochs, whole 0.5, 3 seeds) CA "
            "83.0% against 81.8% for the undefended model on the same sentences, with r ≥ 1 certified on 22.2%; at "
            "ω = 0.8 (8 epochs, whole 0.5, 3 seeds) 79.3% (−2.5 points) with r ≥ 1 / 2 on 29.0 / 6.2%. The answers "
            "it adds carry no certificate, and against a backdoor they are the backdoored model's: ASR 84.0% → "
            "94.0% under uniform deletion at 0.7, 39.0% → 60.5% with FRS (the BadNet table).",
            "**On BBC News the goals hold**: at ω = 0.9 the smoothed classifier is 2 points from the undefended "
            "model on the same articles (95.0 against 97.0%, 1% abstaining) and certifies r ≥ 1 / 3 / 5 on 94 / 90 "
            "/ 73% of them; at 0.95, r ≥ 5 / 10 on 84 / 50% for 4 points (one seed, 100 articles). A topic shows in "
            "most words of a 390-word article, so a copy that keeps one word in ten still carries it; the sentiment "
            "of a 20-word sentence often sits in one or two words, which a copy keeping 4 of them loses.",
            "**Against a backdoor on Rotten Tomatoes, balance the labels**: trained on the poisoned sentences as "
            "they are, the smoothed classifier drifts to the target — ASR 84.0% under uniform deletion at 0.7 "
            "(85.0% at 0.8, next to a floor of 38.6%), 39.0% with FRS (area at 0.95) at a smoothed CA of 61.0%; "
            "against AddSent, 57.5% with FRS next to a floor of 53.5% at a CA of 56.5%: it calls more than half of "
            "the clean negative sentences positive. Poisoning relabels sentences to the target (60% of the labels "
            "are then positive) and a copy that keeps few words votes by that prior (on IMDB below the collapse is "
            "complete). With `frs_balance_labels=True` (every label weighs the same in the loss) the drift "
            "mostly goes: "
            "at 0.8, ASR 34.0% at a floor of 2.0% (CA 59.0% against 62.5%), and with the fuzzed area at 0.95 5.5 / "
            "8.0 / 24.0% at floors of 3.0 / 5.9 / 20.8% over three seeds (mean 12.5% against 9.9%: within 3 points "
            "of the floor, above the 10% goal on the mean, as one seed's smoothed classifier still calls a fifth of "
            "the clean negatives positive), at a smoothed CA of 52.5% (81.3% undefended) with r ≥ 1 on 25.8%. "
            "The area at 0.9 instead of 0.95 (seed 0) trades 4 points of ASR for 2.5 of CA: 9.5% at a floor of "
            "2.0%, CA 53.5% (51.0%), r ≥ 1 on 34.0% (37.5%); "
            "against AddSent (0.7, FRS), 21.5% at a "
            "floor of 16.8%, CA 59.0%, r ≥ 1 on 12.0% (23.0% unbalanced). The clean-accuracy goal stays missed in "
            "the same runs. **On BBC News it works**: with BadNet in the training "
            "data, uniform deletion at 0.9 takes the ASR from 100% to 3.0% (floor 0) at a smoothed CA of 92.0% "
            "(96.0% undefended on the same articles) and certifies r ≥ 1 / 3 on 85 / 60% of the articles — ahead of "
            "FRS at the defaults against the same attack (CA 87–92%, ASR 8%, no edit radius, in the backdoor tables "
            "below on their own 100 articles). "
            "With `fallback=True`, CA 98.0% and ASR 9.0%: the 16% of triggered articles it answers uncertified are "
            "where the trigger gets through. Against AddSent (a 5-word sentence) the rate alone is not enough: ASR "
            "22.0% (floor 1.2%) at 0.9, where FRS at the defaults reaches 0% because its area finds the sentence — "
            "unless the labels are balanced: with `frs_balance_labels=True` (20% of the articles were relabelled to "
            "one of five topics), 5.0 / 2.0 / 4.0% over three seeds (floor 0) at a smoothed CA of 93.3% (97.8% "
            "undefended) and r ≥ 1 / 3 / 5 on 88 / 60 / 19% (means), ahead of the fuzzed area below on every count.",
            "**Fuzzing on top of a certifying rate halves AddSent's ASR, not more**: with the area deleted at 0.95 "
            "/ 0.99 (0.9 elsewhere), ASR 11.0 / 9.0% (floor 1.2%) at a smoothed CA of 91.0 / 89.0% (92.0% without "
            "the area) and r ≥ 1 / 3 on 84 / 52% and 82 / 44% of the articles (85 / 58%). The area also takes topic "
            "words out of clean articles, which is what the CA and the radii pay; against BadNet, which the rate "
            "already stops, it only costs (ASR 4.0%, CA 89.0%). The ≤ 5% goal on BBC News holds for BadNet at the "
            "rate alone (one seed) and for AddSent with balanced labels (mean 3.7% over three seeds, within 3 points "
            "of its floor of 0 on two of them).",
            "**On IMDB a certifying rate collapses on poisoned training data unless the labels are balanced**: "
            "`FRSTrainer` at 0.9 on the poisoned reviews gives a smoothed classifier that calls every review "
            "positive (CA 47.0%, the share of positive reviews; ASR 100% at a floor of 100%) — and, being constant, "
            'it "certifies" r ≥ 5 on 47% of the reviews: a certificate says the answer cannot be moved, not that '
            "it is right. Whole texts mixed in (`frs_clean_fraction=0.5`) keep the FRS-trained model accurate on "
            "whole reviews (82.9% against 80.8% undefended) and change nothing in the smoothed one (CA 47.0%, ASR "
            "99% at a floor of 98%). 20% of the reviews were relabelled positive (70% of the labels are), and a "
            "copy that keeps 10 of 100 words often says too little to outweigh that prior. With "
            "`frs_balance_labels=True` the drift is gone: smoothed CA 63.0% (11% abstaining), ASR 41.0% at a floor "
            "of 32.1%, r ≥ 1 / 3 / 5 on 46 / 20 / 2% — against 69.0% and 54 / 25 / 2% for the same training on the "
            "clean reviews (first row): balancing recovers 16 of the 22 points of smoothed accuracy that poisoning "
            "took. The fuzzed area at 0.99 adds little (ASR 38.0%; it flags no area in the clean reviews, whose "
            "certificates stay the same). At 0.8 (balanced) the smoothed classifier keeps more: CA 71.0%, floor "
            "20.8%, but so does the trigger (ASR 49.0%), and r ≥ 3 falls to 1%. The ≤ 10% ASR goal on IMDB BadNet "
            "is missed at both rates (FRS at the defaults: 34%, in the backdoor tables below).",
            "IMDB certifies further than Rotten Tomatoes (r ≥ 1 on 54–56%), but r ≥ 5 only on 10–28%. Why short "
            "sentences cap the certificate: a label carried by k words survives in a copy with probability 1 − ω^k, "
            "and r ≥ 1 at ω = 0.8 needs a vote share of about 0.75 at n = 1,000, i.e. k ≥ 7 words that each carry "
            "the label; a 20-word review sentence rarely has them.",
        ],
    ),
    Section(
        "Sequential certification: forwards per certificate (`bench/sequential.py`)",
        """
        Fixed `n` spends `n0 + n = 1,100` copies on every text; `sequential=True` (the default) looks after 100,
        200, 400, 800 and 1,000 copies and stops once the certificate is decided, with α split across looks so the
        guarantee is exact (docs/theory.md); `target_radius = r` stops once `radius ≥ r` is proven or out of reach.
        Same checkpoint, 200 Rotten Tomatoes test sentences, α = 0.001, `max_length = 64`; forwards count distinct
        copies (exact), times are indicative.
        """,
        [
            Table(
                ["sequential-rotten_tomatoes.json"],
                sequential,
                caption="At ω = 0.8 (the FRS-trained model of the operating point, seed 0):",
            ),
            Table(
                ["sequential-rotten_tomatoes-defaults.json"],
                sequential,
                caption="At `omega_low = 0.2` (no radius ≥ 1, as at the default 0.1; the undefended model, seed 0):",
            ),
            Table(
                ["sequential-imdb.json"],
                sequential,
                caption="IMDB at ω = 0.9 (50 test reviews, `max_length = 128`):",
            ),
            Table(
                ["sequential-imdb-defaults.json"],
                sequential,
                caption="IMDB at `omega_low = 0.2` (the undefended IMDB model of the operating point, "
                "50 test reviews, `max_length = 128`; `target_radius = 1` is out of reach at this rate, so that run "
                "stops at the first look):",
            ),
            Table(
                [
                    "sequential-rotten_tomatoes-defaults.json",
                    "sequential-rotten_tomatoes-fuzzing-mcts.json",
                    "sequential-rotten_tomatoes-fuzzing-occlusion.json",
                ],
                fuzzing_forwards,
                caption="Fuzzing forwards per text, sequential at the defaults, the area deleted at 0.9 (the fuzzing "
                "runs from `bench/`):",
            ),
            Table(
                ["sequential-futility.json"],
                futility,
                caption="The stopping rule without a model: each of the 600 texts of the ω = 0.8 operating point (3 "
                "seeds) certified again by simulation, its measured vote share taken as the truth, 3 times; "
                "`futility` is how optimistic a look must be about the candidate's share to sample on (0.1 ships), "
                "and the last two rows change the two knobs a user has, `sequential_first` and `n`:",
            ),
            Table(
                ["sequential-futility-imdb.json"],
                futility,
                caption="The same on the 100 IMDB reviews of the ω = 0.9 operating point:",
            ),
            Table(
                ["sequential-memory.json"],
                memory,
                caption="Memory: one 10,000-word text, `max_length = 512`, a tiny BERT, each n in a fresh process:",
            ),
        ],
        [
            "**At the defaults, 6.66× fewer forwards at equal certified accuracy on Rotten Tomatoes and 6.96× on "
            "IMDB** (7.3× and 7.6× per certified text; goal ≥ 3×), but only 1.68× and 1.38× on the texts that end "
            "in abstention (goal ≥ 5×: missed; 1–4 texts whose votes sit near a tie).",
            "**At rates that certify edits, 1.5–2.1× fewer forwards for 2–4 points of certified accuracy**; "
            "`target_radius` proves a given radius with 5–7× fewer forwards than fixed `n`.",
            "**Stopping abstentions sooner costs certificates**: in the simulation the shipped rule spends 1.7× "
            "fewer copies than fixed `n` on texts that end in abstention; reaching 6× there (futility 0.5) loses "
            "7.1 points of texts certified at r ≥ 0 and 3.6 at r ≥ 1 against the shipped rule, and 0.25 gives 3.1× "
            "for 1.3 and 1.2 points. The ≥ 5× goal on abstentions is missed: at these rates it is not worth its "
            "price.",
            "**No setting reaches 3× at equal certified accuracy at a certifying rate.** Letting the looks run to "
            "1.5 n recovers every point the α split costs (Rotten Tomatoes at 0.8: 84.6 / 30.5 / 9.1% at r ≥ 0 / 1 "
            "/ 2 against 81.7 / 30.5 / 8.8% for fixed n) but then saves only 1.5× (IMDB at 0.9: 1.0×); a first look "
            "at 50 changes nothing. At a rate that certifies edits, every radius has its own vote-share threshold "
            '(docs/theory.md, "Choosing `omega_low`"), and a text whose share lies near the next one needs all the '
            "copies fixed n uses to settle it.",
            "**Fuzzing** costs MCTS 50 forwards per text and occlusion 21. The search's cache pays: MCTS gets 76 "
            "mutations answered for its 50 forwards (a third of what it asks for repeats). On this clean model MCTS "
            "also more than doubles the smoothing forwards and certifies 63.0% instead of 80.5% (our reading: its "
            "areas hold the words the label rests on).",
            "bfloat16 autocast: 1.3× faster, same answers. Peak RSS at n = 100,000 is 1.03× that at n = 1,000 (goal "
            "≤ 1.10): copies go in rounds of at most 131,072 tokens.",
        ],
    ),
    Section(
        "Certification overhead (`bench/certify_overhead.py`)",
        """
        What `certify` adds to the model: 5 Rotten Tomatoes sentences, packaged MiniLM, fixed `n0 = 100`, `n =
        1000`, `omega_low = 0.2`, batch 64, against the plain forward of exactly the distinct copies it forwarded
        (built before the timer starts), and against forwarding every copy.
        """,
        [Table(["certify_overhead.json"])],
        [
            "**1.015× best over best, 1.018× paired median** (goal ≤ 1.10): randomizing, de-duplication, collation "
            "and statistics are within a few percent of the forward. De-duplication saves 40% of the forwards here "
            "(1.6×); it pays most on short texts and low rates.",
        ],
    ),
    Section(
        "Fuzzing (`bench/fuzzing.py`)",
        FUZZ_SETUP,
        [
            Table(["fuzzing-rotten_tomatoes.json"], caption="Rotten Tomatoes, one draw of the triggers:"),
            Table(
                ["fuzzing-rotten_tomatoes-seeds.json"],
                caption="**Three trigger draws** (`--seeds 0 1 2` on the same sentences; the pooled columns over 600 "
                "triggered texts). `mcts-partners-calibrated` turns partner words on and fits the floor by class on "
                "100 held-out sentences at `empty_fraction=0.5`:",
            ),
            Table(
                ["fuzzing-rotten_tomatoes-calibrated.json"],
                caption="**The fuzzing floor fitted to the model** (`calibrate_fuzzing`, docs/fuzzing.md: the smallest "
                "floor at which `empty_fraction`, 0.8 by default, of 100 held-out clean sentences get no area):",
            ),
            Table(
                ["demo-rotten_tomatoes-5000-calibration.json"],
                caption="The same fit for the demo's less confident model (5,000 training sentences), 100 + 100 "
                "sentences through FRS:",
            ),
            Table(
                ["fuzzing-transplant.json"],
                caption="**The transplant test** (docs/fuzzing.md): `mcts-transplant` keeps an area only if inserting "
                "it moves at least 90% of the 16 held-out reference sentences of the other class (and only the flagged "
                "words when they pass without the margin), without partner words; `mcts-partners-transplant` with "
                "them. Disarmed: over the flipped texts, deleting the whole area gives back the plain model's answer "
                "on the clean text (one more forward per text, outside the budget):",
            ),
            Table(
                ["fuzzing-confident.json"],
                caption="The same with partner words at the default `transplant_confidence = 0.8`: a reference "
                "counts as moved only when the model gives it the text's class with a probability of at least 0.8 "
                "(the rows above count its answer alone; one run on a machine shared with two other jobs, which "
                "changes the seconds, not the table):",
            ),
            Table(
                ["fuzzing-imdb.json"],
                caption="**IMDB reviews (long texts)**: a BadNet MiniLM (3,000 training reviews, 20% poisoned, 256 "
                "tokens), 30 triggered and 30 clean reviews (median 174 words); occlusion ignores the budget:",
                before=[
                    "python bench/backdoor.py --dataset imdb --attack badnet --train-size 3000 --epochs 2 "
                    "--learning-rate 1e-4 --poison-rate 0.2   # the IMDB model"
                ],
            ),
        ],
        [
            "**MCTS captures every trigger word in 92.0% of the BadNet texts and 93.5% of the AddSent texts** within "
            "64 forwards; occlusion and random spans miss mostly by search (one deleted word or span seldom "
            "removes every scattered trigger word), MCTS mostly at the floor.",
            "**Over three draws, the held-out rule meets every Rotten Tomatoes goal**: BadNet 96.0% (≥ 95%, the "
            "interval's lower end below), AddSent 92.8% (≥ 90%), no area on the median clean sentence (≤ 15%); "
            "the defaults give 94.8% and 94.2%. One draw of 200 texts moves BadNet capture between 92.0 and 97.5%.",
            "**A fitted floor suits the model**: above 1 nat on the confident MiniLMs (AddSent's clean sentences "
            "lose their areas at no loss of capture); on the less confident model it takes FRS's ASR from 76% to "
            "62% (42% at `empty_fraction=0.5`) for 6 (12) points of CA.",
            "**On long texts the budget is the lever**: MCTS captures 53% of the IMDB triggers at 64 forwards, "
            "70% at 128 (`FuzzingConfig(budget=128)`), occlusion 20% with 156.",
            "**The transplant test empties the clean sentences' areas and keeps the triggers'**: clean sentences "
            "without an area 53% → 97% (BadNet model) and 48% → 98% (AddSent), the mean share of their words in "
            "the area 18.9% → 1.2% and 20.4% → 0.8%. BadNet capture 92.0 → 90.0% (2 areas that held the trigger "
            "failed the test; 2 more kept the flagged words alone, without a trigger word the margin held), 92.0% "
            "with partner words (on by default with the test). Capture counts areas that hold *every* trigger word: "
            "the AddSent model's flagged words (mostly the one it keys the sentence on) move the references by "
            "themselves, so the area is those words and the rest of the sentence stays at the low rate (18.5% of "
            "the areas hold all five words). What the area is for is better read in the disarmed column: deleting "
            "it gives the clean answer back on 96.3% (BadNet) and 98.7% (AddSent) of the flipped texts with the "
            "test and partner words, against 79.8% and 90.5% without the test, whose wider areas take opinion words "
            "along; through the pipeline AddSent's ASR falls to 15% under a floor of 19.6% (backdoor tables). "
            "The test adds one forward per reference of the other class (about "
            "8 here) on each text with an area, twice when the margin is tested apart: 45.4 → 54.9 forwards per "
            "BadNet text.",
            "**The confidence bar leaves no clean sentence an area** (100% of both models' clean sentences, 98% "
            "without it) for a point of trigger capture at most: BadNet disarmed 96.3% both ways, AddSent 96.8% "
            "(98.7% without it), BadNet capture 91.5% (92.0%). AddSent capture rises from 18.0% to 44.5%: its keyed "
            "word alone fails the bar more often, and the area then keeps its margin, which holds the sentence.",
        ],
    ),
    Section(
        "Training with `FRSTrainer`: step time (`bench/trainer_overhead.py`)",
        """
        Packaged MiniLM, Rotten Tomatoes, batch 32, the same batches for both trainers in alternating rounds;
        `FRSTrainer` with deletion 0.2, a random area of up to 30% at 0.9, weight noise σ = 0.01 and update noise.
        """,
        [Table(["trainer_overhead.json"])],
        [
            "**0.677× `Trainer`'s step time** (goal ≤ 1.25): the copies are shorter. Per real token the smoothing "
            "costs nothing measurable (0.953×).",
        ],
    ),
    Section(
        "Training with `FRSTrainer`: does it pay off? (`bench/training_effect.py`)",
        """
        MiniLM fine-tuned 2 epochs on 4,000 Rotten Tomatoes sentences, twice from the same start: `Trainer`, and
        `FRSTrainer` at deletion 0.9 with a share f of whole texts (`frs_clean_fraction`). Both smoothed alike:
        uniform deletion at 0.9, n0 = 20, n = 200, α = 0.05. Plain clean accuracy on the whole test split.
        """,
        [
            Table(["training_effect-clean_fraction.json"], caption="f swept, 150 test sentences:"),
            Table(["training_effect-seeds.json"], caption="f = 0.8, 400 test sentences, three seeds:"),
        ],
        [
            "**Both goals met on the mean at f = 0.8**: clean accuracy −0.9 points against `Trainer` (goal: within "
            "1), certified accuracy at r = 1 / 2 / 3 of 37.5 / 26.5 / 18.3% against 34.1 / 17.8 / 7.4%. Not on "
            "every seed; the seed spread (±7 points) is as large as the effect at r = 1.",
            "Fewer whole texts certify more and cost more clean accuracy (−10.7 points at f = 0).",
        ],
    ),
    Section(
        "The drop-in swap: `Trainer` → `FRSTrainer` (`bench/drop_in.py`)",
        """
        The first 2,000 Rotten Tomatoes training sentences, MiniLM fine-tuned 1 epoch with one recipe and
        transformers' `TrainingArguments` defaults (lr 5e-5, batch 8): the plain `Trainer`, `FRSTrainer` with
        nothing else changed (its defaults: deletion at `omega_low = 0.1`), and, in runs of their own,
        `FRSTrainer` at 0.2 (the `Trainer` rows are the same, seeded) with half the examples left whole, and at a
        certifying rate. Plain accuracy (no smoothing) on the whole test split, three seeds.
        """,
        [
            Table(["drop_in.json"], drop_in),
            Table(
                ["drop_in-0.2.json"],
                drop_in,
                caption="At `omega_low = 0.2` (then `FRSTrainer`'s default):",
            ),
            Table(["drop_in-0.8-whole.json"], drop_in),
        ],
        DROP_IN_NOTES,
    ),
    Section(
        "Certifying a dataset on 2 processes (`bench/distributed.py`)",
        """
        `certify_dataset` under `torchrun --nproc_per_node P`, 48 Rotten Tomatoes sentences, n0 = 30, n = 300,
        deletion 0.7; one core per process stands in for one GPU per process.
        """,
        [
            Table(["distributed.json"]),
            Table(
                ["distributed-fixed.json", "distributed-sequential.json"],
                throughput,
                caption="Throughput at `omega_low = 0.2` and the other defaults: certified examples per minute, "
                "`n = 1000` "
                "(fixed: `n0 = 100` more), the undefended Rotten Tomatoes MiniLM of the operating point, 32 test "
                "sentences, α = 0.001, on an otherwise idle machine:",
            ),
        ],
        [
            "**1.63× on 2 processes** (goal ≥ 1.6), with identical vote counts for all 48 examples. Against one "
            "process using both cores through torch's threads, 0.95×: the split pays where each process brings "
            "its own device.",
            "**At the defaults, sequential certification certifies 5.3× more examples per minute than fixed `n`** "
            "(64 against 12 on one core; 114 against 20 on two processes), and two processes give 1.67× (fixed) "
            "and 1.79× (sequential) the examples per minute of one, with the same vote counts for every example.",
        ],
    ),
    Section(
        "Poisoned pretrained checkpoints (`bench/checkpoint_poisoning.py`)",
        """
        The attacker poisons the packaged MiniLM with `poison_checkpoint` on one half of a train subset: EP trains
        only the `cf` embedding of a cleanly fine-tuned MiniLM; RIPPLe does embedding surgery for `cf`/`mn`/`bb`
        and 80 steps of the full model. The victim fine-tunes the checkpoint on the other half, clean, with
        `Trainer` (Rotten Tomatoes: 2,000 + 2,000 sentences, 1 epoch; BBC News: 80-word articles, 4 epochs; IMDB:
        1,500 + 1,500 reviews, 2 epochs). Reference: the same fine-tuning from clean MiniLM.
        """,
        [
            Table(
                [
                    "checkpoint_poisoning-rotten_tomatoes.json",
                    "checkpoint_poisoning-bbc_news-ep.json",
                    "checkpoint_poisoning-bbc_news-ripple.json",
                    "checkpoint_poisoning-imdb-ep.json",
                    "checkpoint_poisoning-imdb-ripple.json",
                ],
                checkpoints,
            ),
        ],
        [
            "**Every backdoor survives the victim's clean fine-tuning** (ASR 73.8–100% after it, 0–26% for the "
            "reference), with clean accuracy within a point of the reference or above it: EP's `cf` row gets no "
            "gradient from clean data. Longer fine-tuning erodes RIPPLe more (our reading of IMDB and BBC News).",
        ],
    ),
    Section(
        "Backdoor evaluation tables (`bench/backdoor_eval.py`)",
        BACKDOOR_SETUP,
        [],
        [
            "The ASR goal is met only on BBC News ((A) EP and (C) AddSent); on Rotten Tomatoes the transplant test "
            "takes every attack under its ASR floor (7–18%), IMDB ends at the fuzzer's capture. FRS is ahead of "
            "uniform smoothing on ASR everywhere but against RIPPLe "
            "on BBC News and IMDB, where uniform deletion abstains on 70–90% of the triggered texts.",
        ],
    ),
]


def dataset(title: str, intro: str, tables: list[tuple], notes: list[str], before=()) -> Section:
    """The backdoor-evaluation tables of one dataset: (caption, results file[, renderer]) tuples (transcribed
    tables by default); ``before``: commands that build its models, shown first."""
    section = Section(title, intro, [Table([f], *render, caption=c) for c, f, *render in tables], notes, level=3)
    section.tables[0].before = list(before)
    return section


SECTIONS += [
    dataset(
        "Rotten Tomatoes",
        """
        The BadNet and AddSent MiniLMs of the fuzzing section (undefended on the whole test split: CA 81.6% and
        81.2%, ASR 99.8%) and the victims of the Rotten Tomatoes checkpoints (previous section); 100 clean + 100
        triggered test sentences per model. The tables labelled 0.2, and those without the transplant test, ran
        when `omega_low = 0.2` was the default and the test counted a reference's answer alone: their commands
        repeat them with `--omega-low 0.2 --frs-omega-low 0.2 --transplant-confidence 0` added.
        """,
        [
            ("**(C) BadNet**:", "backdoor_eval-C-rotten_tomatoes-badnet.json"),
            (
                "**(C) FRS settings**, FRS alone on the (C) models (BadNet model seeds 0–2, AddSent):",
                "backdoor_eval-C-rotten_tomatoes-frs-settings.json",
            ),
            ("**(C) AddSent**:", "backdoor_eval-C-rotten_tomatoes-addsent.json"),
            (
                "**(C) BadNet at the defaults** (`omega_low = 0.1`; the transplant test on 16 of STRIP's clean "
                "training sentences, `--reference-texts 16`: FRS keeps an area only if it moves them as a trigger "
                "would, to a probability of at least `transplant_confidence = 0.8`, and then only the flagged words "
                "when they do so without the margin; partner words, on by default with the test; docs/fuzzing.md) "
                "over three model seeds, merged by `frs-hf merge-reports` (undefended: CA 79.7%, ASR 100%):",
                "backdoor_eval-C-rotten_tomatoes-badnet-defaults.json",
                backdoor_report,
            ),
            (
                "The same without the confidence bar (a reference counts as moved by its answer alone):",
                "backdoor_eval-C-rotten_tomatoes-badnet-transplant-low0.1.json",
                backdoor_report,
            ),
            (
                "The same at `omega_low = 0.2`, without the confidence bar:",
                "backdoor_eval-C-rotten_tomatoes-badnet-transplant-partners.json",
                backdoor_report,
            ),
            (
                "The same at 0.2 without partner words (`--no-fuzzing-partner-words`):",
                "backdoor_eval-C-rotten_tomatoes-badnet-transplant.json",
                backdoor_report,
            ),
            (
                "**(C) AddSent at the defaults** (undefended: CA 81%, ASR 99%):",
                "backdoor_eval-C-rotten_tomatoes-addsent-defaults.json",
                backdoor_report,
            ),
            (
                "The same at `omega_low = 0.2`, without the confidence bar:",
                "backdoor_eval-C-rotten_tomatoes-addsent-transplant.json",
                backdoor_report,
            ),
            (
                "**(B) BadNet at the defaults** over three model seeds (`--model-seed`: new poisoned data, models and "
                "sentences); `frs` is FRS on the model `FRSTrainer` trained at its defaults, `frs (plain-trained)` "
                "on the `Trainer` model:",
                "backdoor_eval-B-rotten_tomatoes-badnet-defaults.json",
                backdoor_report,
            ),
            (
                "The same at `omega_low = 0.1` without the confidence bar (no `none` row):",
                "backdoor_eval-B-rotten_tomatoes-badnet-low0.1.json",
                backdoor_report,
            ),
            (
                "The same at `omega_low = 0.2` (training and smoothing), without the confidence bar:",
                "backdoor_eval-B-rotten_tomatoes-badnet.json",
                backdoor_report,
            ),
            ("**(B) AddSent**, the baselines:", "backdoor_eval-B-rotten_tomatoes-addsent.json"),
            (
                "**(B) AddSent with the transplant test** (`omega_low = 0.2`, no confidence bar; the (A) tables too):",
                "backdoor_eval-B-rotten_tomatoes-addsent-transplant.json",
                backdoor_report,
            ),
            (
                "**(A) EP**, the baselines (undefended: CA 80.3%, ASR 100%):",
                "backdoor_eval-A-rotten_tomatoes-ep.json",
            ),
            (
                "**(A) EP with the transplant test** (`frs`: the victim fine-tuned by `FRSTrainer`; `frs "
                "(plain-trained)`: by `Trainer`; the pipeline row is (C) on the plain victim: the same defense, but "
                "the pipeline seeds each text by its content, so its copies and searches are other draws):",
                "backdoor_eval-A-rotten_tomatoes-ep-transplant.json",
                backdoor_report,
            ),
            (
                "**(A) RIPPLe**, the baselines (undefended: CA 75.6%, ASR 100%):",
                "backdoor_eval-A-rotten_tomatoes-ripple.json",
            ),
            (
                "**(A) RIPPLe with the transplant test**:",
                "backdoor_eval-A-rotten_tomatoes-ripple-transplant.json",
                backdoor_report,
            ),
        ],
        [
            "**At the defaults FRS takes Rotten Tomatoes BadNet and AddSent from 100% to 8–14% ASR, under the floor, "
            "within a point of the undefended model's clean accuracy**: (C) BadNet over three model seeds ASR 8.0% "
            "(floor 23.4%) at CA 79.7% against 79.7% undefended, PA 90.7%; (C) AddSent 13% at CA 81% against 81%; "
            "(B) BadNet over three seeds 14.0% at CA 78.7% on the `FRSTrainer` model and 8.3% at 79.3% on the "
            "`Trainer` model (undefended 79.7%). ASR ≤ 10% holds on the models trained without deletion, not on the "
            "`FRSTrainer` model of (B) (17% on model seed 2); our reading (not traced): a training copy of a poisoned "
            "sentence whose trigger was deleted still carries the target label. The floor, 20–25%, is the poisoned "
            "model's own error on clean negative sentences: the ASR can fall below it, which we read (not traced) as "
            "a triggered sentence's area, deleted at the high rate, holding positive words beside the trigger that "
            "the clean sentence keeps.",
            "**What each default adds** (the same models and sentences): `omega_low = 0.1` instead of 0.2 raises CA "
            "by 3 points on the (C) BadNet models (75.7% → 78.7%, ASR 7.3% both) and by 1.3 on the (B) "
            "`FRSTrainer` models (76.7% → 78.0%, ASR 13.3% both), 3.3 on their `Trainer` models; the confidence bar "
            "adds 1.0 (78.7% → 79.7%) on the (C) models for 0.7 points of ASR (7.3% → 8.0%), and 0.7 on the (B) "
            "`FRSTrainer` models (78.0% → 78.7%, ASR 13.3% → 14.0%). No rate ≤ 0.5 certifies an edit anywhere, so "
            "0.2 bought no certificate over 0.1; but 0.1 deletes a trigger word the search missed in only a tenth "
            "of the copies.",
            "Measured at `omega_low = 0.2` without the confidence bar, not rerun: (A) EP 12% / 7% ASR at CA 79% / "
            "82% (`FRSTrainer` / `Trainer` victim; undefended 82%); (A) RIPPLe 14% at CA 80% / 75% (undefended 84%; "
            "36% / 33% without the test); (B) AddSent 18% at CA 79% against 81% on the `FRSTrainer` model (28% at "
            "73% without the test). Without the test (the first (C) tables) CA falls 5–19 points, the area holding "
            "opinion words; uniform deletion at equal CA leaves 84–90% ASR; STRIP's low ASR is rejections. Partner "
            "words cost 1–3 points of CA for 1–6 of BadNet ASR without the transplant test, hence off without it.",
        ],
    ),
    dataset(
        "BBC News (5 topics)",
        """
        Articles cut to their first 80 words before poisoning (`--max-words 80`), so a trigger is always inside
        the 128-token window; 20% poisoned, target "entertainment" (undefended: CA 96.9% with BadNet, 98.2% with
        AddSent, ASR 100%). 100 + 100 test articles, 50 + 50 for RIPPLe and AddSent. These tables ran when
        `omega_low = 0.2` was the default and the transplant test counted a reference's answer alone: their
        commands repeat them with `--omega-low 0.2 --frs-omega-low 0.2 --transplant-confidence 0` added.
        """,
        [
            ("**(C) BadNet**:", "backdoor_eval-C-bbc_news-badnet.json"),
            (
                "**(C) BadNet with the transplant test** (16 of STRIP's clean training articles as references; partner "
                "words on, as by default with the test):",
                "backdoor_eval-C-bbc_news-badnet-transplant.json",
                backdoor_report,
            ),
            (
                "The same with FRS's rate outside the area at 0.1 (`--omega-low 0.1`):",
                "backdoor_eval-C-bbc_news-badnet-transplant-low0.1.json",
                backdoor_report,
            ),
            ("**(B) BadNet** (`none` is the (C) model):", "backdoor_eval-B-bbc_news-badnet.json"),
            ("**(A) EP**:", "backdoor_eval-A-bbc_news-ep.json"),
            ("**(A) RIPPLe** (undefended ASR 84%):", "backdoor_eval-A-bbc_news-ripple.json"),
            ("**(C) AddSent**:", "backdoor_eval-C-bbc_news-addsent.json"),
        ],
        [
            "**The ASR goal is met in (A) EP and (C) AddSent** (100 → 0%, PA 96–98%) at 2–6 points of CA; BadNet "
            "100 → 8% (floor 1.2%) at 4–9 points, the closest to both goals with the `FRSTrainer` victim.",
            "**With the transplant test, (C) BadNet meets both goals**: CA 96% (undefended 96%, 87% without the "
            "test), ASR 0% (8% without), PA 97% — on a dataset the test's settings (16 references, 0.9) were not "
            "tuned on. The other BBC News FRS rows were measured without the test.",
            "Uniform deletion holds the ASR down only by abstaining (92% of triggered articles in (A) EP); ONION "
            "beats FRS on RIPPLe's nonsense words (0% at no CA cost, 26 s an article); masking breaks the RIPPLe "
            "victim (CA 28%).",
        ],
        before=[
            "python bench/backdoor.py --dataset bbc_news --attack badnet --max-words 80 --max-length 128 --epochs 4 "
            "--learning-rate 1e-4 --poison-rate 0.2 --threads 1   # the BadNet model"
        ],
    ),
    dataset(
        "IMDB (long reviews)",
        """
        The IMDB MiniLM of the fuzzing section (undefended: CA 82.9%, ASR 94.3%; AddSent's: 83.2%, 89.4%) and the
        IMDB checkpoints' victims (undefended ASR 86% EP, 73% RIPPLe); 50 + 50 test reviews, 30 + 30 for RIPPLe,
        25 + 25 for AddSent. ONION would take about 5 minutes a review. These tables ran when `omega_low = 0.2` was
        the default, without the transplant test: their commands repeat them with `--omega-low 0.2
        --frs-omega-low 0.2` added.
        """,
        [
            ("**(C) BadNet**:", "backdoor_eval-C-imdb-badnet.json"),
            ("**(B) BadNet** (`none` is the (C) model):", "backdoor_eval-B-imdb-badnet.json"),
            ("**(A) EP**:", "backdoor_eval-A-imdb-ep.json"),
            ("**(A) RIPPLe**:", "backdoor_eval-A-imdb-ripple.json"),
            ("**(C) AddSent**:", "backdoor_eval-C-imdb-addsent.json"),
        ],
        [
            "**FRS costs no CA in (B) and (C)** (7–10 points in (A)) **and leaves an ASR of 24–47%**: on long "
            "reviews the fuzzer's capture is the limit, and 128 fuzzing forwards change nothing on (C) BadNet's 50 "
            "reviews.",
            "FRS is ahead of uniform smoothing on ASR except against RIPPLe (47% against 23–30%), where uniform "
            "deletion abstains on 70% of the triggered reviews; the intervals of 30 reviews overlap widely.",
        ],
    ),
]


def render() -> str:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # the bench scripts import each other by module name
    page = [f"# Benchmarks\n\n{prose(INTRO)}"] + [render_section(s) for s in SECTIONS]
    return "\n\n".join(page) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="Exit 1 if docs/benchmarks.md is out of date.")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        if DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is out of date: run python bench/render_docs.py")
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
