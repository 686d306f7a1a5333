"""The audit part of a run's report: the one-page summary, the model-card sections and the EU AI Act items.

:func:`audit_report` turns a report dict (:func:`kdcore.report.build_report`) and the run's saved audit
(:func:`kdcore.audit.load_audit`, None before ``python -m kdcore audit`` ran) into the plain JSON the report's
template draws: ``summary`` (what the teacher does, how far each student stands in, where it fails, what flips
it, the certified threshold), ``art13`` (each item of Art. 13(3)(b) of the EU AI Act with the evidence the run
holds for it, or what the provider must add), ``slices`` (per student its worst slices; the full table goes to
the appendix) and ``probes``. Everything is text and numbers; the template escapes all of it.
"""

from __future__ import annotations

from ..intervals import format_interval

__all__ = ["audit_report", "ART13_ITEMS", "WORST_IN_SUMMARY", "WORST_IN_CARD"]

WORST_IN_SUMMARY = 3
WORST_IN_CARD = 5
ART13_ITEMS = (
    ("i", "intended purpose"),
    ("ii", "level of accuracy (with its metrics), robustness and the circumstances that may affect them"),
    ("iii", "known or foreseeable circumstances that may lead to risks"),
    ("iv", "capabilities to provide information that explains its output"),
    ("v", "performance regarding specific persons or groups"),
    ("vi", "specifications of the input data; training, validation and testing data"),
    ("vii", "information to let deployers interpret the output and use it appropriately"),
)


def _share(value, ci=None) -> str:
    if value is None:
        return "—"
    interval = format_interval(ci) if ci else ""
    return f"{value:.3f}" + (f" ({interval})" if interval else "")


def _teacher_line(report: dict) -> str:
    card = {row["model"]: row for row in report.get("model_card", [])}
    teacher = report.get("teacher", {})
    accuracy = card.get("teacher", {}).get("accuracy")
    acc = f"accuracy {accuracy:.3f} ({card['teacher'].get('accuracy_ci') or 'no interval'})" \
        if isinstance(accuracy, (int, float)) else "no gold labels to measure accuracy"
    return (f"The teacher ({teacher.get('source') or teacher.get('name') or 'a fine-tuned encoder'}, "
            f"{teacher.get('parameters') or '?'} parameters) assigns each text one of "
            f"{', '.join(map(str, report.get('label_names', [])))}; on the {report.get('test_size', '?')} test "
            f"texts its {acc}.")


def _student_rows(report: dict, audit: dict | None) -> list[dict]:
    rows = []
    certified = (audit or {}).get("certified", {})
    worst = (audit or {}).get("worst", {})
    for row in report.get("model_card", []):
        name = row["model"]
        if name == "teacher":
            continue
        c = certified.get(name)
        entry = {"student": name, "role": row.get("role"), "fidelity": _share(row.get("fidelity")),
                 "fidelity_ci": row.get("fidelity_ci"), "threshold": None, "coverage": None, "routed_fidelity": None,
                 "worst": [f"{w['slice']} (n={w['n']}): {_share(w['fidelity'], w['ci'])}"
                           for w in worst.get(name, [])[:WORST_IN_SUMMARY]]}
        if c:
            test = c.get("test", {})
            rule = "none certified" if c["threshold"] is None else f"{c['score']} ≥ {c['threshold']:.4g}"
            entry.update(threshold=rule,
                         coverage=f"{test.get('coverage') or 0:.1%}",
                         routed_fidelity=_share(test.get("fidelity"), test.get("ci")))
        rows.append(entry)
    return rows


def _probe_rows(audit: dict | None) -> list[dict]:
    """One row per probe and model: flip rate (interval), mean change of p(class), teacher-only flips."""
    rows = []
    for result in (audit or {}).get("probes", {}).get("results", []):
        for name, m in result.get("models", {}).items():
            only = result.get("teacher_only_flips", {}).get(name, {}).get("count")
            rows.append({"probe": result["probe"], "applied": result["n_applied"], "model": name,
                         "flip_rate": _share(m["flip_rate"], m["flip_ci"]), "mean_change": f"{m['mean_change']:+.3f}",
                         "teacher_only": only})
    return rows


def _flip_summary(audit: dict | None) -> list[str]:
    lines = []
    for result in (audit or {}).get("probes", {}).get("results", []):
        if result["probe"] not in ("negation", "swap") or not result.get("models"):
            continue
        rates = ", ".join(f"{name} {m['flip_rate']:.1%}" for name, m in result["models"].items())
        lines.append(f"{result['description']} (on {result['n_applied']} texts): flip rate {rates}.")
    if audit is not None and not lines:
        lines.append("Neither negation nor the swap list applied to any probed text.")
    return lines


def _art13(report: dict, audit: dict | None) -> list[dict]:
    has = audit is not None
    groups = sorted({s["group"] for s in (audit or {}).get("slices", [])})
    columns = [g[len("column "):] for g in groups if g.startswith("column ")]
    evidence = {
        "i": "Not in the run: the provider states the intended purpose (see Intended use).",
        "ii": "Model card (accuracy, macro-F1, fidelity with 95% intervals); Quantitative analyses "
              + ("(per-slice accuracy and fidelity, counterfactual probes)." if has else "(run the audit for slices "
                                                                                          "and probes)."),
        "iii": ("Worst slices per student and the texts that flip the teacher but not a student (Quantitative "
                "analyses, Appendix)." if has else "Not measured: run `python -m kdcore audit`."),
        "iv": "Readable students and their word-level explanations (Example explanations; explanation metrics in "
              "the Appendix).",
        "v": ("Identity-term swap probe" + (f"; slices by the data's columns {', '.join(columns)}" if columns else
                                             "; the data has no group column, so no per-group slices") + "."
              if has else "Not measured: run `python -m kdcore audit` (with a group column in the data)."),
        "vi": "Evaluation data (split sizes and sha256), transfer set, Provenance.",
        "vii": ("Certified stand-in threshold and hybrid model (when to read the student, when to run the "
                "teacher)." if has and audit.get("certified") else "Trust curves (where each student stands in)."),
    }
    return [{"item": f"Art. 13(3)(b)({key})", "asks": asks, "evidence": evidence[key]} for key, asks in ART13_ITEMS]


def _slice_appendix(audit: dict) -> dict:
    students = list(audit.get("worst", {}))
    rows = []
    for s in audit.get("slices", []):
        acc = s.get("accuracy") or {}
        rows.append({"slice": s["name"], "n": s["n"], "accuracy": _share(acc.get("value")),
                     "fidelity": [_share(s["students"][n]["fidelity"]["value"]) for n in students]})
    return {"students": students, "rows": rows}


def audit_report(report: dict, audit: dict | None) -> dict:
    """The audit block of a report (see the module docstring); ``audit`` None gives the summary without it."""
    students = _student_rows(report, audit)
    block = {"available": audit is not None, "teacher": _teacher_line(report), "students": students,
             "flips": _flip_summary(audit), "art13": _art13(report, audit),
             "factors": sorted({s["group"] for s in (audit or {}).get("slices", [])})}
    if audit is not None:
        block["n_texts"], block["min_support"] = audit["n_texts"], audit["min_support"]
        block["worst"] = {name: [{"slice": w["slice"], "n": w["n"], "fidelity": f"{w['fidelity']:.3f}",
                                  "ci": format_interval(w["ci"]), "overall": f"{w['overall']:.3f}"}
                                 for w in rows[:WORST_IN_CARD]] for name, rows in audit["worst"].items()}
        block["probes"], block["probe_texts"] = _probe_rows(audit), audit["probes"]["n_texts"]
        block["probe_examples"] = [{"probe": r["probe"], "student": name, **ex}
                                   for r in audit["probes"]["results"]
                                   for name, only in r.get("teacher_only_flips", {}).items()
                                   for ex in only.get("examples", [])[:2]]
        block["certified"] = list(audit.get("certified", {}).values())
        block["appendix_slices"] = _slice_appendix(audit)
    return block
