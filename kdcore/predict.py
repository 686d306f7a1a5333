"""``python -m kdcore predict``: a run's certified hybrid answers a file of texts.

The hybrid (:mod:`kdcore.certify`, saved by ``python -m kdcore audit`` as ``hybrid.json``) lets the student
answer where its stand-in score reaches the certified threshold and the teacher elsewhere (the teacher runs on
those texts only). Each text gets the answer, who gave it, and the student's calibrated probability of agreeing
with the teacher there (from the run's trust record; empty for a run without one).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from .certify import HYBRID_FILE, load_hybrid
from .export import neutralise_formulas
from .tasks import task_of
from .trust import load_trust, stand_in_scores
from .utils import configure_threads

__all__ = ["hybrid_of", "hybrid_answers", "read_texts", "add_predict_parser", "cmd_predict", "OUTPUT_SUFFIXES"]

OUTPUT_SUFFIXES = (".csv", ".jsonl")


def hybrid_of(run, student: str | None = None):
    """The run's certified hybrid with its models attached; ValueError that says the fix for a run of another
    task or one never audited."""
    task = task_of(run)
    if task.unit != "text":
        raise ValueError(f"The run {run.name!r} tags words ({task.name} task); predict answers with a certified "
                         "hybrid of a text classification run, which a token run does not have.")
    hybrid = load_hybrid(run, student)
    if hybrid is None:
        raise ValueError(f"The run {run.name!r} has no certified hybrid ({HYBRID_FILE}); make one with "
                         f"`python -m kdcore audit --run {run.name}` and run predict again.")
    return hybrid


def hybrid_answers(run, texts: Sequence[str], student: str | None = None):
    """One row per text (a pandas DataFrame): ``text``, ``answer`` (a class name), ``answered_by`` (``student`` or
    ``teacher``), ``student`` (its name), ``student_answer``, ``p_agrees`` (the student's calibrated probability
    of giving the teacher's class; NaN without a trust record) and ``p_answer`` (the answer's probability)."""
    return _answers(run, hybrid_of(run, student), texts)


def _answers(run, hybrid, texts: Sequence[str]):
    """:func:`hybrid_answers` with the run's hybrid already loaded."""
    import pandas as pd

    texts = [str(t) for t in texts]
    names = list(run.label_names)
    if not texts:
        return pd.DataFrame(columns=["text", "answer", "answered_by", "student", "student_answer", "p_agrees",
                                     "p_answer"])
    proba, routed, logits = hybrid.decide(texts)
    trust = load_trust(run)
    entry = trust.students.get(hybrid.student_name) if trust is not None else None
    p_agrees = (np.asarray(entry.calibrator(stand_in_scores(logits, entry.score)), dtype=np.float64)
                if entry is not None else np.full(len(texts), np.nan))
    answer = proba.argmax(axis=1)
    return pd.DataFrame({
        "text": texts, "answer": [names[i] for i in answer],
        "answered_by": np.where(routed, "student", "teacher"), "student": hybrid.student_name,
        "student_answer": [names[i] for i in logits.argmax(axis=1)], "p_agrees": p_agrees,
        "p_answer": proba[np.arange(len(texts)), answer]})


def read_texts(path: str | Path, text_column: str | None = None) -> list[str]:
    """The texts of a .txt (one a line), .csv / .tsv or .jsonl / .json file, every row kept (duplicates too); an
    empty file or one without a text column is refused by the reader with the fix."""
    from .readers import read_any

    dataset = read_any(Path(path), text_column=text_column, label_column=False, dedupe=False)
    for warning in (dataset.report.warnings if dataset.report is not None else []):
        print(f"note: {warning}", file=sys.stderr)
    return list(dataset.texts)


def add_predict_parser(sub, common, open_run) -> None:
    """``open_run(args)`` loads the run named by ``args.run`` (the CLI's own loader)."""
    predict = sub.add_parser(
        "predict", help="Answer a file of texts with a run's certified hybrid (student where certified, teacher "
        "elsewhere).",
        description="Each text is answered by the run's certified hybrid (saved by `python -m kdcore audit`): the "
        "student where its stand-in score reaches the certified threshold, the teacher elsewhere. Writes per text "
        "the answer, who answered and the student's p(agrees).")
    common(predict)
    predict.add_argument("run", help="Run folder or run name.")
    predict.add_argument("--input", required=True, help="Texts: .txt (one a line), .csv / .tsv or .jsonl / .json.")
    predict.add_argument("--text-column", help="Text column of a CSV / JSONL (detected if omitted).")
    predict.add_argument("--output", help="Write the answers to this .csv or .jsonl file (default: CSV on stdout).")
    predict.add_argument("--student", help="The hybrid of this student (default: the one saving the most teacher "
                         "passes).")
    predict.set_defaults(func=lambda args: cmd_predict(args, open_run))


def cmd_predict(args, open_run) -> int:
    output = Path(args.output) if args.output else None
    if output is not None and output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"--output {output.name!r}: write the answers to a {' or '.join(OUTPUT_SUFFIXES)} file.")
    configure_threads(args.threads)
    run = open_run(args)
    hybrid = hybrid_of(run, args.student)  # refuse before reading a large file
    frame = _answers(run, hybrid, read_texts(args.input, args.text_column))
    if output is None:
        neutralise_formulas(frame).to_csv(sys.stdout, index=False)
        return 0
    if output.suffix.lower() == ".csv":
        neutralise_formulas(frame).to_csv(output, index=False, lineterminator="\r\n")
    else:
        frame.to_json(output, orient="records", lines=True, force_ascii=False)
    by_student = int((frame["answered_by"] == "student").sum()) if len(frame) else 0
    print(f"{len(frame)} answers written to {output}: {by_student} by the student, {len(frame) - by_student} by the "
          "teacher.", file=sys.stderr)
    return 0
