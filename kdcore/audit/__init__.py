"""The audit of a sequence-classification run: slices, counterfactual probes and a certified stand-in threshold.

:func:`audit_run` computes all three from a loaded :class:`~kdcore.runs.Run` (its stored test and dev splits,
the teacher's stored logits, its trust record) and writes them into the run with the run store's atomic writes:
:data:`AUDIT_FILE` (slices, worst slices per student, probes, certified thresholds) and
:data:`kdcore.certify.HYBRID_FILE` (the hybrid model's settings). :func:`audit_text` puts it in words.

- slices: :mod:`kdcore.audit.slices` (automatic and the user's own, worst slices found by search);
- probes: :mod:`kdcore.audit.probes` (negation, a word-swap list, deletion of each model's top word);
- threshold: :mod:`kdcore.certify` (fixed-sequence testing on dev, coverage and fidelity on test).
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from ..certify import HYBRID_FILE, certify_student
from ..intervals import format_interval
from ..metrics import softmax
from ..runs import RunError, update_run_file
from ..tasks import task_of
from ..trust import DEV_LOGITS_FILE, load_trust, stand_in_scores
from ..utils import strict_json
from .probes import DEFAULT_SWAPS, deletion_probe, negation_probe, run_probe, swap_probe
from .slices import MIN_SUPPORT, AuditData, automatic_slices, slice_table, user_slice, worst_slices

__all__ = ["AUDIT_FILE", "PROBE_TEXTS", "audit_data", "audit_run", "load_audit", "audit_text", "probe_run",
           "certify_run", "slices_of"]

AUDIT_FILE = "audit.json"
PROBE_TEXTS = 300  # texts of the split the probes edit (a seeded sample when the split is larger)
_TEXT_KEYS = {"text", "label"}

# The output field (see kdcore.tasks) whose predictions the slices, probes and thresholds read: one label a text.
AUDITED_FIELD = "MulticlassPreds"


def _say(progress, message: str) -> None:
    """Tell ``progress`` (a function of one line of text, or None) what the audit is doing; the audit is not a
    stage of a run's build, so it sends lines, not progress events."""
    if progress is not None:
        progress(message)


def _split_rows(run, split: str) -> list[dict]:
    path = run.path / "data" / f"{split}.jsonl"
    if not path.is_file():
        raise RunError(f"Run {run.name!r} stores no {split!r} split.")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _teacher_logits(run, split: str, texts: list[str]) -> np.ndarray:
    stored = {"test": "teacher_test_logits.npy", "dev": DEV_LOGITS_FILE}.get(split)
    if stored and (run.path / stored).is_file():
        logits = run.array(stored)
        if len(logits) == len(texts):
            return logits
    return np.asarray(run.teacher.predict_logits(texts))


def audit_data(run, split: str = "test", windows: bool = True) -> tuple[AuditData, dict]:
    """The :class:`AuditData` of ``split`` and every model's logits there ({"teacher": ..., student: ...})."""
    if task_of(run).output_field != AUDITED_FIELD:
        raise ValueError(f"Run {run.name!r} is a {task_of(run).name} run; the audit covers runs that give one "
                         "label a text (sequence classification).")
    rows = _split_rows(run, split)
    texts = [r["text"] for r in rows]
    labels = [r.get("label") for r in rows]
    gold = np.asarray(labels, dtype=np.int64) if rows and all(v is not None for v in labels) else None
    logits = {"teacher": _teacher_logits(run, split, texts)}
    logits.update({name: np.asarray(run.student(name).predict_logits(texts)) for name in run.student_names})
    trust = load_trust(run)
    stand_in = {}
    if trust is not None:
        stand_in = {name: t.likely(stand_in_scores(logits[name], t.score))
                    for name, t in trust.students.items() if name in logits}
    extra = sorted({k for r in rows for k in r} - _TEXT_KEYS)
    columns = {k: [r.get(k) if isinstance(r.get(k), (str, int, float, bool)) else None for r in rows] for k in extra}
    counts = np.asarray(run.teacher.window_counts(texts)) if windows and texts else None
    data = AuditData(texts, run.label_names, gold, softmax(logits["teacher"]),
                     {name: logits[name].argmax(axis=1) for name in run.student_names}, stand_in, counts, columns)
    return data, logits


def slices_of(data: AuditData, user: Sequence[dict] = ()) -> list:
    """Automatic slices and the user's own (each a dict of :func:`user_slice`'s arguments)."""
    return automatic_slices(data) + [user_slice(data, **spec) for spec in user]


class _Remembered:
    """A model whose class probabilities are computed once per distinct text: every probe runs each model on
    the same original texts, and edits often coincide."""

    def __init__(self, model):
        self.model, self.seen = model, {}

    def predict_proba(self, texts) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.seen]
        if missing:
            self.seen.update(zip(missing, np.asarray(self.model.predict_proba(missing))))
        return np.stack([self.seen[t] for t in texts]) if len(texts) else np.zeros((0, 0))


def probe_run(run, texts: Sequence[str], swap_pairs=DEFAULT_SWAPS, progress=None) -> list[dict]:
    """Every probe over ``texts``: negation, the swap list, and deletion of each model's top word."""
    models = {name: _Remembered(model) for name, model in run.models().items()}
    probes = [negation_probe(), swap_probe(swap_pairs)]
    results = []
    for probe in probes:
        _say(progress, f"probe: {probe.name}")
        results.append(run_probe(probe, models, texts, run.label_names))
    for name, model in models.items():
        _say(progress, f"probe: deletion of {name}'s top words")
        results.append(run_probe(deletion_probe(model, list(texts), name), models, texts, run.label_names))
    return results


def certify_run(run, test_logits: dict, target: float = 0.95, confidence: float = 0.95) -> dict:
    """{student: its certified threshold and what it gives on test}; empty without a dev split or trust record."""
    trust = load_trust(run)
    if trust is None or not trust.students:
        return {}
    dev = [r["text"] for r in _split_rows(run, "dev")]
    dev_teacher = _teacher_logits(run, "dev", dev)
    out = {}
    for name, t in trust.students.items():
        dev_student = np.asarray(run.student(name).predict_logits(dev))
        out[name] = certify_student(name, t.score, dev_student, dev_teacher, test_logits[name],
                                    test_logits["teacher"], target, confidence)
    return out


def _sample(texts: list[str], limit: int, seed: int = 0) -> list[str]:
    if len(texts) <= limit:
        return list(texts)
    keep = np.sort(np.random.default_rng(seed).choice(len(texts), size=limit, replace=False))
    return [texts[i] for i in keep]


def audit_run(run, swap_pairs=DEFAULT_SWAPS, target: float = 0.95, confidence: float = 0.95,
              user: Sequence[dict] = (), probe_texts: int = PROBE_TEXTS, min_support: int | None = None,
              progress=None, write: bool = True) -> dict:
    """Slices, probes and certified thresholds of ``run`` on its test split, written into the run
    (:data:`AUDIT_FILE`, and :data:`HYBRID_FILE` when a threshold is certified) unless ``write`` is False."""
    _say(progress, "slices")
    data, logits = audit_data(run)
    slices = slices_of(data, user)
    support = MIN_SUPPORT if min_support is None else min_support
    audit = {"split": "test", "n_texts": len(data), "min_support": support,
             "slices": slice_table(data, slices),
             "worst": {name: worst_slices(data, name, slices, support) for name in data.students},
             "user_slices": list(user)}
    sample = _sample(data.texts, probe_texts)
    audit["probes"] = {"n_texts": len(sample), "swap_pairs": [list(p) for p in swap_pairs],
                       "results": probe_run(run, sample, swap_pairs, progress)}
    _say(progress, "certified thresholds")
    audit["certified"] = certify_run(run, logits, target, confidence)
    if write:
        update_run_file(run, AUDIT_FILE, strict_json(audit))
        if audit["certified"]:
            hybrid = {"target": target, "confidence": confidence, "students": audit["certified"]}
            update_run_file(run, HYBRID_FILE, strict_json(hybrid))
    return audit


def load_audit(run) -> dict | None:
    """The run's saved audit, or None before ``python -m kdcore audit`` has run on it."""
    path = run.path / AUDIT_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _pct(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def audit_text(audit: dict, worst: int = 5) -> str:
    """The audit in words: per student its worst slices, the probes' flip rates, the certified thresholds."""
    lines = [f"Audit of the {audit['split']} split ({audit['n_texts']} texts; slices of at least "
             f"{audit['min_support']} texts)"]
    for name, rows in audit["worst"].items():
        lines.append(f"  {name}: the {min(worst, len(rows))} slices where it stands in worst "
                     f"(fidelity, 95% interval, on all texts):")
        lines += [f"    {r['fidelity']:.3f} [{format_interval(r['ci'])}] vs {r['overall']:.3f}  n={r['n']}  "
                  f"{r['slice']}" for r in rows[:worst]] or ["    none below its overall fidelity"]
    probes = audit["probes"]
    lines.append(f"Probes on {probes['n_texts']} test texts: flip rate (95% interval), mean change of p(class)")
    for result in probes["results"]:
        lines.append(f"  {result['probe']} (applies to {result['n_applied']} texts):")
        for name, m in result["models"].items():
            only = result["teacher_only_flips"].get(name, {}).get("count")
            tail = "" if only is None else f"; flips the teacher but not it: {only}"
            lines.append(f"    {name}: {m['flip_rate']:.3f} [{format_interval(m['flip_ci'])}], "
                         f"{m['mean_change']:+.3f}{tail}")
    lines.append("Certified stand-in thresholds (fixed-sequence testing on dev; coverage and fidelity on test):")
    for name, c in audit["certified"].items():
        if c["threshold"] is None:
            lines.append(f"  {name}: no threshold reaches fidelity {c['target']:.2f} at {c['confidence']:.0%} "
                         f"confidence on dev ({c['calibration_size']} texts); it never stands in")
            continue
        test = c["test"]
        lines.append(f"  {name}: {c['score']} >= {c['threshold']:.4g}; dev lower bound {_pct(c['lower_bound'])} "
                     f"on {c['routed']} texts; test coverage {test['coverage']:.3f}, routed fidelity "
                     f"{_pct(test['fidelity'])} [{format_interval(test['ci'])}], teacher passes saved "
                     f"{c['teacher_passes_saved']:.1%}")
    return "\n".join(lines)
