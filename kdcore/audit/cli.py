"""The ``audit`` subcommand of ``python -m kdcore`` (its parser and its command)."""

from __future__ import annotations

import sys

from ..utils import configure_threads
from . import PROBE_TEXTS, audit_run, audit_text
from .probes import DEFAULT_SWAPS, read_swap_list

__all__ = ["add_audit_parser", "cmd_audit", "parse_slice"]


def add_audit_parser(sub, common, open_run) -> None:
    """``open_run(args)`` loads the run named by ``--run`` / ``--runs-dir`` (the CLI's own loader)."""
    audit = sub.add_parser(
        "audit", help="Slices, counterfactual probes and a certified stand-in threshold of a run.",
        description="Measure the teacher and every student per slice of the test split (and find the slices where "
        "each student stands in worst), edit the test texts (negation, word swaps, deletion of each model's top "
        "word) to see whose decision flips, and certify a stand-in threshold on the dev split. Everything is saved "
        "into the run (audit.json, hybrid.json).")
    common(audit, run=True)
    audit.add_argument("--swap-list", help="Word pairs to swap, one pair a line ('he,she'); default: a small list "
                       "of identity terms (pronouns, names, nationality words).")
    audit.add_argument("--target", type=float, default=0.95, help="Fidelity the stand-in threshold certifies.")
    audit.add_argument("--confidence", type=float, default=0.95, help="Confidence of that guarantee.")
    audit.add_argument("--slice", action="append", default=[], metavar="KIND:VALUE",
                       help="A slice of your own: keyword:WORD, regex:PATTERN or column:NAME=VALUE (repeatable).")
    audit.add_argument("--probe-texts", type=int, default=None, help="Test texts the probes edit (default 300).")
    audit.add_argument("--min-support", type=int, default=None, help="Texts a worst slice needs (default 20).")
    audit.set_defaults(func=lambda args: cmd_audit(args, open_run))


def parse_slice(spec: str) -> dict:
    """``keyword:WORD`` / ``regex:PATTERN`` / ``column:NAME=VALUE`` as :func:`kdcore.audit.slices.user_slice`'s
    arguments."""
    kind, sep, value = spec.partition(":")
    if not sep or kind not in ("keyword", "regex", "column"):
        raise ValueError(f"--slice {spec!r}: write keyword:WORD, regex:PATTERN or column:NAME=VALUE.")
    if kind == "column":
        column, eq, value = value.partition("=")
        if not eq:
            raise ValueError(f"--slice {spec!r}: a column slice is column:NAME=VALUE.")
        return {"kind": kind, "value": value, "column": column}
    return {"kind": kind, "value": value}


def cmd_audit(args, open_run) -> int:
    user = [parse_slice(s) for s in args.slice]
    pairs = read_swap_list(args.swap_list) if args.swap_list else DEFAULT_SWAPS
    configure_threads(args.threads)
    run = open_run(args)

    def progress(message: str) -> None:
        print(f"[audit] {message}", file=sys.stderr, flush=True)

    audit = audit_run(run, pairs, args.target, args.confidence, user,
                      PROBE_TEXTS if args.probe_texts is None else args.probe_texts, args.min_support, progress)
    print(audit_text(audit))
    files = "audit.json, hybrid.json" if audit["certified"] else "audit.json"
    print(f"Audit saved into {run.path} ({files}).")
    return 0
