"""Command line: python -m kdcore demo | distill | label | evaluate | explain | report."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .records import STAGE_LABELS
from .tasks import detect_task, get_task, task_of
from .utils import configure_threads

DEMO_NAME = "demo"
# The readers name their options as Python keywords; on the command line they are flags.
_CLI_WORDS = (("label_column=False", "--label-column none"), ("text_column=", "--text-column"),
              ("label_column=", "--label-column"), ("label_column", "--label-column"),
              ("text_column", "--text-column"))


def cli_wording(message: str) -> str:
    """An error message with the library's keyword names replaced by the command line's flags."""
    for library, flag in _CLI_WORDS:
        message = message.replace(library, flag)
    return message


class FileProgress:
    """Appends every progress event as one JSON line (read by the dashboard's Distill view)."""

    BATCHED = ("teacher_predict", "ngram_features")  # stages that report every batch: at most two lines a second

    def __init__(self, path, also=None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.also = also
        self._last_write = 0.0

    def write(self, event: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event, default=str) + "\n")

    def __call__(self, event: dict) -> None:
        import time

        now = time.monotonic()
        # Batch-level prediction events come fast; keep the file small.
        if event.get("stage") not in self.BATCHED or now - self._last_write > 0.5 or event.get("done") == event.get("total"):
            self.write({**event, "time": time.time()})
            self._last_write = now
        if self.also is not None:
            self.also(event)

    def close(self) -> None:
        if self.also is not None:
            self.also.close()


class TqdmProgress:
    """Turns kd-lens progress events into one tqdm bar per stage."""

    LABELS = STAGE_LABELS

    def __init__(self):
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self._bar = None
        self._stage = None

    def __call__(self, event: dict) -> None:
        stage = event.get("stage")
        total = event.get("total")
        if event.get("phase") == "end":  # a finished stage's bar shows it whole; an enclosing stage's end opens none
            if stage == self._stage and self._bar is not None and self._bar.total:
                self._bar.n = self._bar.total
            if stage == self._stage:
                self.close()
                self._stage = None
            return
        if stage != self._stage or (total and self._bar is not None and self._bar.total != total):
            self.close()
            self._stage = stage
            if stage == "done":
                return
            self._bar = self._tqdm(total=total, desc=self.LABELS.get(stage, stage), unit="step" if stage == "teacher_fit" else "it",
                                   dynamic_ncols=True, leave=True)
        if self._bar is None:
            return
        done = event.get("step", event.get("done", event.get("epoch")))
        if done is not None and self._bar.total:
            self._bar.n = min(done, self._bar.total)
        postfix = {k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in event.items()
                   if k in ("loss", "dev_accuracy", "student", "model", "epoch", "part") and v is not None}
        if postfix:
            self._bar.set_postfix(postfix, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _print_table(metrics: dict, out=None) -> None:
    from .metrics import metrics_table

    frame = metrics_table(metrics)
    print(frame.to_string(index=False), file=out or sys.stdout)
    text = task_of(metrics).metrics_text(metrics)
    if text:
        print(text, file=out or sys.stdout)


def _build_with_progress(args, spec):
    """build_run(spec) with tqdm bars, and JSON-lines progress (ending in done / error) when asked."""
    from .pipeline import build_run

    progress = TqdmProgress()
    if args.progress_file:
        progress = FileProgress(args.progress_file, also=progress)
    try:
        built = build_run(spec, runs_dir=args.runs_dir, progress=progress)
    except BaseException as err:
        if args.progress_file:
            progress.write({"stage": "error", "message": cli_wording(str(err)) or type(err).__name__})
        raise
    finally:
        progress.close()
    if args.progress_file:
        progress.write({"stage": "done", "path": str(built)})
    return built


def cmd_demo(args) -> int:
    from .runs import list_runs, resolve_run_path

    task = get_task(args.task)
    if args.name == DEMO_NAME:
        args.name = task.demo_name
    path = resolve_run_path(args.name, args.runs_dir)
    if path.exists() and not args.force:
        print(f"The demo run is ready at {path} (use --force to rebuild it).")
        _print_table(json.loads((path / "metrics.json").read_text()))
        return 0
    if path.exists() and args.force:
        import shutil

        shutil.rmtree(path)
    partial = path.with_name(path.name + ".partial")
    if partial.exists():
        print(f"Resuming the interrupted demo run in {partial}")
    spec = task.demo_spec(args)
    built = _build_with_progress(args, spec)
    print(f"Demo run written to {built}")
    _print_table(json.loads((built / "metrics.json").read_text()))
    print(f"Open the dashboard: streamlit run dashboard/app.py   (runs listed: {len(list_runs(args.runs_dir))})")
    return 0


def spec_from_args(args):
    """The RunSpec that ``python -m kdcore distill`` options describe (or the one in ``--spec FILE``)."""
    from .config import RunSpec

    if args.spec:
        spec = RunSpec.from_json(Path(args.spec).read_text(encoding="utf-8"))
        return spec if args.threads is None else RunSpec.from_dict({**spec.to_dict(), "threads": args.threads})
    if not args.name:
        raise ValueError("Name the new run with --name (or give a whole run spec with --spec FILE).")
    if not args.data and (args.text_column or args.label_column):
        raise ValueError("--text-column and --label-column name columns of a data file: add --data FILE.")
    task = _task_of(args)
    # Without --students: every kind the task offers (the Distill view's default too).
    kinds = ([k.strip() for k in args.students.split(",") if k.strip()] if args.students is not None
             else task.student_choices())
    # No teacher named: the embedded encoder, fine-tuned on the data (never an untrained head).
    encoder = args.encoder or args.teacher is None
    return task.spec_from_args(args, kinds, encoder)


def _task_of(args):
    """The task ``--task`` names, or (``auto``) the one the data file and the teacher's head show."""
    return detect_task(data=args.data, teacher=args.teacher, corpus=args.corpus, named=args.task)


def print_preflight(result, out=None) -> None:
    """The checks' findings, one per line, then what the reader counted, the data's splits and classes."""
    out = out or sys.stdout
    for finding in result.findings:
        print(f"{finding['level']}: {finding['message']}", file=out)
    if result.reader:
        print("reader: " + ", ".join(f"{kind} {n}" for kind, n in result.reader.items()), file=out)
    if result.splits:
        print("splits: " + ", ".join(f"{k} {v}" for k, v in result.splits.items()), file=out)
    if result.class_counts:
        print("training rows per class: " + ", ".join(f"{k} {v}" for k, v in result.class_counts.items()), file=out)


def cmd_distill(args) -> int:
    spec = spec_from_args(args)
    if args.check:
        from .preflight import preflight

        result = preflight(spec)
        print_preflight(result)
        return 0 if result.ok else 2
    built = _build_with_progress(args, spec)
    print(f"Run written to {built}")
    _print_table(json.loads((built / "metrics.json").read_text()))
    return 0


def _open_run(args):
    from .runs import load_run, resolve_run_path

    path = Path(args.run)
    if not path.exists():
        path = resolve_run_path(args.run, args.runs_dir)
    return load_run(path)


def cmd_evaluate(args) -> int:
    run = _open_run(args)
    if args.refresh:
        from .pipeline import refresh_metrics

        configure_threads(args.threads)
        refresh_metrics(run)
        print(f"Metrics measured again: {run.path / 'metrics.json'}")
    metrics = _explain_sample(run, args) if args.explain_sample else run.metrics
    _print_table(metrics)
    _print_trust(run, args)
    return 0


def _explain_sample(run, args) -> dict:
    """Explanation metrics on the first ``--explain-sample`` test examples, added to the run (the per-example
    numbers too, so that a later --refresh summarises these and not older ones); the run's metrics after."""
    import pandas as pd

    from .runs import run_lock, update_run_file, update_run_metrics

    configure_threads(args.threads)
    methods = args.methods.split(",")
    records, block = task_of(run).explanation_metrics(run.teacher, run.students, run.split("test"),
                                                      args.explain_sample, methods=methods)
    print(pd.DataFrame(block["summary"]).to_string(index=False))
    # Both under the run's lock, the metrics merged into those on disk (another evaluate's change is kept).
    with run_lock(run.path):
        update_run_file(run, "explanation_metrics.jsonl", records)
        metrics = update_run_metrics(run, lambda current: {**current, "explanations": block})
    print(f"Explanation metrics on {block['sample_size']} examples added to {run.path / 'metrics.json'}")
    return metrics


def _print_trust(run, args) -> None:
    """The run's trust curves, computed (and stored in the run) when it has none or --trust asks again
    (for a task whose runs store one)."""
    if not task_of(run).has_trust():
        return
    from .trust import load_trust, recompute_trust

    record = None if args.trust else load_trust(run)
    if record is None:
        configure_threads(args.threads)
        print("Computing the trust curves (stand-in score and calibration on dev, the curve on test)…")
        record = recompute_trust(run)
    print(record.text())


def cmd_explain(args) -> int:
    from .attribution import explain_many

    configure_threads(args.threads)
    run = _open_run(args)
    models = run.models()
    if task_of(run).unit != "text":  # a sentence of words: their tags, side by side
        return _print_token_tags(models, args.text.split())
    explanations = explain_many(models, args.text, method=args.method)
    first = next(iter(explanations.values()))
    label = first.label_names[first.target] if first.label_names else first.target
    print(f"method: {args.method}   target class: {label}")
    header = ["word"] + list(explanations)
    rows = [header]
    for i, word in enumerate(first.words):
        rows.append([word] + [f"{e.scores[i]:+.4f}" for e in explanations.values()])
    rows.append(["p(target)"] + [f"{e.probs[e.target]:.3f}" for e in explanations.values()])
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    for row in rows:
        print("  ".join(cell.rjust(w) if c else cell.ljust(w) for c, (cell, w) in enumerate(zip(row, widths))))
    for name, expl in explanations.items():
        for warning in expl.warnings:
            print(f"note ({name}): {warning}")
    return 0


def _print_token_tags(models: dict, words: list[str]) -> int:
    """A token run's answer to ``explain``: every model's BIO tags of the words, side by side."""
    from .tasks.token.analysis import model_tags

    if not words:
        raise ValueError("Give the sentence to tag as the text argument (words separated by spaces).")
    tags = {name: rows[0] for name, rows in model_tags(models, [words]).items()}
    rows = [["word", *tags], *[[word, *(t[i] for t in tags.values())] for i, word in enumerate(words)]]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    print("Word attributions for an entity: the dashboard's Explain page.")
    return 0


def cmd_report(args) -> int:
    run = _open_run(args)
    html_path, json_path = task_of(run).write_report(run, args.out)
    print(f"Report written to {html_path} and {json_path}")
    if args.pdf:
        from .audit.pdf import html_to_pdf

        pdf_path = html_path.with_suffix(".pdf")
        html_to_pdf(html_path.read_text(encoding="utf-8"), pdf_path)
        print(f"PDF printed by Chromium: {pdf_path}")
    return 0


def _add_distill_parser(sub, common) -> None:
    from .config import DistillConfig, StudentConfig, TeacherConfig

    dist = sub.add_parser("distill", help="Distill a teacher into students on your data (or the default corpus).")
    common(dist)
    dist.add_argument("--spec", help="A run spec (JSON, written by RunSpec.to_json): every option below but "
                      "--runs-dir, --threads and --progress-file is taken from it.")
    dist.add_argument("--name", help="Name of the new run (required without --spec).")
    dist.add_argument("--check", action="store_true",
                      help="Only check the data and the teacher's classes (what the Distill view shows before its "
                           "Start button), print the findings and exit: 0 when a run can start, 2 when not.")
    dist.add_argument("--data", help="CSV / TSV / JSONL / TXT file, or for token classification a CoNLL file "
                      "(word<TAB>tag lines) or JSONL with tokens / tags (default: the embedded corpus).")
    dist.add_argument("--corpus", default="rotten_tomatoes", choices=["rotten_tomatoes", "debates", "wnut16"],
                      help="Embedded corpus without --data: rotten_tomatoes (fresh / rotten reviews), debates (2016 "
                      "debate statements, the speaker's party: three classes) or wnut16 (tweets, 10 entity types: "
                      "token classification).")
    dist.add_argument("--task", default="auto", choices=["auto", "sequence", "token", "ner"],
                      help="sequence (one label a text) or token (one BIO tag a word); auto: token when --data is a "
                      "CoNLL / tokens-tags JSONL file or --teacher is a token classifier.")
    dist.add_argument("--text-column", help="Text column of a CSV/JSONL (detected if omitted).")
    dist.add_argument("--label-column", help="Label column (detected if omitted; none = pure distillation).")
    dist.add_argument("--teacher", default=None,
                      help="Teacher: a trained classifier's local folder or hub id. Without it the embedded MiniLM "
                      "encoder gets a new head fine-tuned on the data's labels (the data must have labels).")
    dist.add_argument("--encoder", action="store_true", help="The teacher is a bare encoder: add a head and fine-tune.")
    dist.add_argument("--teacher-epochs", type=float, default=None,
                      help=f"Fine-tuning epochs for the teacher (default: {TeacherConfig().epochs:g} for an encoder, "
                      f"and at least {TeacherConfig().min_steps} steps on small data; 0 = use a trained classifier "
                      "as loaded).")
    dist.add_argument("--label-map", default=None,
                      help="Match a trained teacher's classes to the data's: TEACHER_CLASS=DATA_CLASS,... "
                      "(needed when the names differ; same names in another order are matched by name).")
    dist.add_argument("--labels-by-index", action="store_true",
                      help="The teacher's classes are placeholders (LABEL_0, ...): match them to the data's classes "
                      "(sorted names) by position.")
    dist.add_argument("--teacher-steps", type=int, default=None,
                      help=f"Cap on teacher fine-tuning steps (default {TeacherConfig().max_steps}; 300 for token "
                      "classification).")
    dist.add_argument("--students", default=None,
                      help="Comma-separated student kinds (default: every kind of the task: linear, mlp, aug_linear "
                      "for texts; linear, mlp, crf for token runs). aug_linear adds one teacher pass over the "
                      "vocabulary's n-grams; crf one teacher pass over the distinct words and windows.")
    default_steps = StudentConfig().max_steps
    dist.add_argument("--student-steps", type=int, default=default_steps,
                      help=f"Most Adam steps of the MLP (StudentConfig.max_steps, default {default_steps}; it stops "
                      "sooner on a training-loss plateau); the linear student trains with L-BFGS until it converges.")
    dist.add_argument("--loss", default="kd_kl", choices=["kd_kl", "kd_mse", "hard_ce"])
    dist.add_argument("--temperature", type=float, default=DistillConfig().temperature,
                      help=f"kd_kl temperature (default {DistillConfig().temperature:g}, chosen on the default "
                      "corpus's dev split).")
    dist.add_argument("--alpha", type=float, default=0.0, help="Weight of gold-label cross-entropy.")
    dist.add_argument("--augment-copies", type=int, default=2)
    dist.add_argument("--mention-copies", type=int, default=0,
                      help="Token runs: mention-replacement copies of each training sentence (entity spans swapped "
                      "with others of the same type) plus a tag-keeping substitution copy, in the transfer set.")
    dist.add_argument("--no-clauses", action="store_true",
                      help="Leave the clauses of the training texts out of the transfer set.")
    dist.add_argument("--attr-match", type=float, default=0.0, help="Weight of teacher-attribution matching.")
    dist.add_argument("--feature-align", type=float, default=0.0, help="Weight of the FitNets hint (MLP).")
    dist.add_argument("--explain-sample", type=int, default=0)
    dist.add_argument("--seed", type=int, default=0, help="Seed of the train/dev/test split.")
    dist.add_argument("--teacher-logits", action="append", metavar="DIR",
                      help="A label folder of `python -m kdcore label` made by --teacher: the transfer set's logits "
                      "are read from it instead of computed (repeat for several folders).")
    dist.add_argument("--progress-file", help="Append progress events as JSON lines to this file.")
    dist.set_defaults(func=cmd_distill)


def build_parser() -> argparse.ArgumentParser:
    from .config import DistillConfig

    parser = argparse.ArgumentParser(prog="python -m kdcore", description="kd-lens: distill a text classifier into "
                                     "readable students and compare their explanations.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, run=False):
        p.add_argument("--runs-dir", default="runs", help="Folder holding the runs (default: runs).")
        p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores).")
        if run:
            p.add_argument("--run", default=DEMO_NAME, help="Run folder or run name (default: demo).")

    demo = sub.add_parser("demo", help="Build the embedded default run (MiniLM teacher on Rotten Tomatoes).",
                          description="Fine-tune the embedded MiniLM teacher on the Rotten Tomatoes reviews, distill "
                          "linear and MLP students (and their label-trained twins), evaluate, and save the run. "
                          "A finished run is reused; an interrupted one resumes.")
    common(demo)
    demo.add_argument("--name", default=DEMO_NAME, help="Run name (default: demo).")
    demo.add_argument("--force", action="store_true", help="Rebuild even if the run exists.")
    demo.add_argument("--teacher-steps", type=int, default=450, help="Teacher fine-tuning steps of 32 texts.")
    demo.add_argument("--augment-copies", type=int, default=2, help="Augmented copies per training text.")
    demo.add_argument("--temperature", type=float, default=DistillConfig().temperature,
                      help="Distillation temperature (0.5 gave the highest dev fidelity on this corpus).")
    demo.add_argument("--explain-sample", type=int, default=60, help="Test texts used for explanation metrics.")
    demo.add_argument("--progress-file", help="Append progress events as JSON lines to this file.")
    demo.add_argument("--task", default="sequence", choices=["sequence", "ner", "token"],
                      help="sequence: the reviews demo; ner (or token): the MiniLM token tagger fine-tuned on the "
                      "WNUT-16 tweets, distilled into per-word students (run name demo-ner).")
    demo.set_defaults(func=cmd_demo)

    _add_distill_parser(sub, common)
    from .scale.cli_label import add_label_parser

    add_label_parser(sub, common, TqdmProgress)
    from .audit.cli import add_audit_parser

    add_audit_parser(sub, common, _open_run)
    from .predict import add_predict_parser

    add_predict_parser(sub, common, _open_run)

    ev = sub.add_parser("evaluate", help="Print a run's metrics and trust curves; add explanation metrics with "
                        "--explain-sample.")
    common(ev, run=True)
    ev.add_argument("--explain-sample", type=int, default=0, help="Test texts to compute explanation metrics on.")
    ev.add_argument("--methods", default="integrated_gradients", help="Comma-separated attribution methods.")
    ev.add_argument("--refresh", action="store_true",
                    help="Measure every model again on the run's test split (accuracy, fidelity, their 95%% "
                         "intervals, twin margins, speed) and write the run's metrics.json.")
    ev.add_argument("--trust", action="store_true", help="Recompute the trust curves even when the run has them "
                    "(a run without them gets them anyway).")
    ev.set_defaults(func=cmd_evaluate)

    ex = sub.add_parser("explain", help="Word scores of the teacher and every student, side by side.")
    common(ex, run=True)
    ex.add_argument("text", help="The text to explain.")
    ex.add_argument("--method", default="integrated_gradients",
                    help="integrated_gradients, gradient_x_input, occlusion, lime or shapley_sampling.")
    ex.set_defaults(func=cmd_explain)

    rep = sub.add_parser("report", help="Write a self-contained HTML (and JSON) report of a run.")
    common(rep, run=True)
    rep.add_argument("--out", default="report.html", help="Output HTML path; the JSON goes beside it.")
    rep.add_argument("--pdf", action="store_true", help="Also print the page to PDF (A4) with Chromium, beside it.")
    rep.set_defaults(func=cmd_report)
    return parser


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:  # our errors (DataError, RunError, TeacherError) say what to do
        print(f"error: {cli_wording(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume.", file=sys.stderr)
        return 130
