"""Overview: the run's model card (quality, fidelity, explanations, size, speed) and provenance."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import audit_panel, charts, safe, trust_panel
from dashboard.components.sections import lazy_sections, section
from dashboard.components.sidebar import draw_for_task, require_run
from kdcore.intervals import format_interval
from kdcore.metrics import NO_GOLD_LABELS

__all__ = ["render", "definitions_popover"]

_FORMATS = {"accuracy": "%.3f", "macro_f1": "%.3f", "fidelity": "%.3f", "MB": "%.2f", "texts/s": "%.0f",
            "parameters": "%d"}
NO_VALUE = "—"  # shown for missing numbers, e.g. the teacher's agreement with itself
# The sections below the model card, one tab each, drawn when opened; the first is open on the first load and
# draws no chart (a chart's library would hold the card back).
SEQUENCE_SECTIONS = ("Explanation agreement", "Charts", "Where students stand in", "Where they stand in worst",
                     "Confusion matrices", "Provenance")
TOKEN_SECTIONS = ("Gold entities per type", "Per entity type against the teacher", "Where students stand in",
                  "Explanation agreement")
TEACHER_NOTE = "Blank (—) for the teacher: the students' explanations are compared with the teacher's."


def definitions_popover(label: str = "Definitions") -> None:
    """Every metric's definition (kdcore.explain_metrics.ALL_DEFINITIONS), one click away."""
    from kdcore.explain_metrics import ALL_DEFINITIONS

    with st.popover(label, icon=":material/menu_book:"):
        for name, text in ALL_DEFINITIONS.items():
            st.markdown(f"**{name}**: {text}")


def _metric_groups() -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]:
    """kdcore's faithfulness and agreement metric names, and their definitions."""
    from kdcore.explain_metrics import AGREEMENT_METRICS, DEFINITIONS, FAITHFULNESS_METRICS

    return tuple(FAITHFULNESS_METRICS), tuple(AGREEMENT_METRICS), dict(DEFINITIONS)


def _own_class_table(rows: pd.DataFrame, definitions: dict[str, str], method: str) -> None:
    """ERASER's pair on each model's own predicted class (kdcore.explain_metrics.OWN_CLASS_METRICS), when computed."""
    from kdcore.explain_metrics import OWN_CLASS_METRICS

    own = [m for m in OWN_CLASS_METRICS if f"{m}_mean" in rows.columns]
    if own:
        st.markdown("**Faithfulness for each model's own predicted class** (ERASER's definition; the same numbers as "
                    "above where the model predicts the teacher's class)")
        _metric_table(rows, own, definitions, key=f"faithfulness_own_{method}")


def _metric_table(frame: pd.DataFrame, metrics: list[str], definitions: dict[str, str], note: str = "",
                  key: str | None = None) -> None:
    """``model`` and the means of ``metrics`` (kdcore's numbers), each followed by its bootstrap 95%
    interval where the run has one, every row visible (height fits the rows)."""
    table = frame[["model"]].copy()
    for m in metrics:
        table[m] = frame[f"{m}_mean"]
        if {f"{m}_ci_low", f"{m}_ci_high"} <= set(frame.columns):
            table[f"{m} 95% CI"] = [format_interval((lo, hi)) for lo, hi in zip(frame[f"{m}_ci_low"],
                                                                                 frame[f"{m}_ci_high"])]
    config = {m: st.column_config.NumberColumn(m, format="%.3f", help=" ".join(filter(None, [definitions.get(m),
                                                                                            note])) or None)
              for m in metrics}
    st.dataframe(table, hide_index=True, width="stretch", height="content", column_config=config,
                 placeholder=NO_VALUE, key=key)


def _explanation_tables(summary: pd.DataFrame) -> None:
    """kdcore's explanation summary, one tab per attribution method: the faithfulness of each model's own
    explanations, and their agreement with the teacher's (blank for the teacher, the reference)."""
    faithfulness, agreement, definitions = _metric_groups()
    if "model" not in summary.columns:
        st.dataframe(summary, hide_index=True, width="stretch", placeholder=NO_VALUE)
        return
    faithful = [m for m in faithfulness if f"{m}_mean" in summary.columns]
    agree = [m for m in agreement if f"{m}_mean" in summary.columns]
    from kdcore.explain_metrics import OWN_CLASS_METRICS

    known = {*faithful, *agree, *OWN_CLASS_METRICS}
    faithful += [c[: -len("_mean")] for c in summary.columns if c.endswith("_mean") and c[: -len("_mean")] not in known]
    methods = list(dict.fromkeys(summary["method"])) if "method" in summary.columns else [""]
    tabs = st.tabs([safe.md(m.replace("_", " ")) or "explanations" for m in methods]) if len(methods) > 1 else [st.container()]
    for method, tab in zip(methods, tabs):
        rows = summary[summary["method"] == method] if method else summary
        with tab:
            left, right = st.columns([3, 2]) if faithful and agree else (st.container(), st.container())
            if faithful:
                with left:
                    st.markdown("**Faithfulness** (each model's explanation of itself, for the teacher's class)")
                    _metric_table(rows, faithful, definitions, key=f"faithfulness_{method}")
                    _own_class_table(rows, definitions, method)
            if agree:
                with right:
                    st.markdown("**Agreement with the teacher** (— for the teacher: it is the reference)")
                    _metric_table(rows, agree, definitions, note=TEACHER_NOTE, key=f"agreement_{method}")
    with st.expander("Every method in one table, with standard deviations and 95% intervals"):
        st.dataframe(summary, hide_index=True, width="stretch", height="content",
                     placeholder=NO_VALUE, column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                                                          for c in summary.columns if c.endswith(("_mean", "_std", "_ci_low", "_ci_high"))})


def _twins(card: pd.DataFrame, twins: dict[str, str], models: dict) -> pd.DataFrame:
    """Distilled students beside their label-trained twins (``twins``: the manifest's {student: twin}),
    with kdcore's paired interval of the fidelity margin where the run has one."""
    from kdcore.intervals import format_interval

    rows = []
    by_name = card.set_index("model")
    for name in card["model"]:
        twin = twins.get(name)
        if twin in by_name.index:
            row = {"student": name}
            for column in ("accuracy", "macro_f1", "fidelity"):
                row[f"{column} (distilled)"] = by_name.at[name, column]
                row[f"{column} (labels only)"] = by_name.at[twin, column]
            margin = models.get(name, {}).get("fidelity_over_twin")
            if margin:
                row["fidelity margin"] = margin.get("difference")
                row["margin 95% CI"] = format_interval(margin.get("ci"))
            rows.append(row)
    return pd.DataFrame(rows)


def _intervals(models: dict) -> dict:
    """{metric: {model: [low, high]}} of the run's 95% intervals, for the bar chart."""
    return {metric: {name: entry[f"{metric}_ci"] for name, entry in models.items() if entry.get(f"{metric}_ci")}
            for metric in ("accuracy", "macro_f1", "fidelity")}


def _number(entry: dict, key: str, no_gold: bool) -> str:
    if no_gold and key != "fidelity":
        return NO_GOLD_LABELS
    value = entry.get(key)
    return f"{value:.3f}" if isinstance(value, (int, float)) else NO_VALUE


def render() -> None:
    """Draw the run's page as its task's output asks (a label per text, or tags per word)."""
    key = require_run()
    if key is not None:
        draw_for_task(key, {"MulticlassPreds": _draw_labels, "SequenceTags": _draw_tags})


def _draw_labels(key: state.RunKey) -> None:
    run = state.meta(key)
    metrics = run.metrics or {}
    card = state.metrics_frame(key)
    head, defs = st.columns([5, 1])
    head.title(f"Run {safe.md(run.name)}")
    with defs:
        definitions_popover()
    teacher = run.manifest.get("teacher", {})
    st.caption(
        f"Created {safe.md(run.manifest.get('created_at', '?'))} on {safe.md(run.manifest.get('device', '?'))} · "
        f"teacher {safe.code(teacher.get('source', '?'))} · classes {safe.md(', '.join(run.label_names))} · test set "
        f"{metrics.get('test_size', '?')} texts · transfer set "
        f"{run.manifest.get('transfer_set', {}).get('size', '?')} texts"
    )
    for finding in metrics.get("findings", []):  # label checks and the teacher check, made by kdcore
        (st.error if finding.get("level") == "error" else st.warning)(safe.md(finding.get("message", "")))
    if card.empty:
        st.warning("This run has no metrics.json; rebuild it or run `python -m kdcore evaluate`.")
        return

    models = metrics.get("models", {})
    _headline(run, metrics, models)
    _card(run, card, models)

    # Every section below the card is drawn when its tab is opened (the first one on the first load).
    tabs = lazy_sections(SEQUENCE_SECTIONS, key="overview_sections")
    with section(tabs, "Explanation agreement") as open_:
        if open_:
            _explanation_section(metrics, run)
    with section(tabs, "Charts") as open_:
        if open_:
            left, right = st.columns(2)
            left.plotly_chart(charts.metric_bars(card, intervals=_intervals(models)), width="stretch",
                              key="overview_bars")
            if {"MB", "texts/s"} <= set(card.columns) and card["MB"].notna().any():
                right.plotly_chart(charts.size_speed_scatter(card), width="stretch", key="overview_scatter")
    with section(tabs, "Where students stand in") as open_:
        if open_:
            trust_panel.trust_section(state.trust(key), run.path)
    with section(tabs, "Where they stand in worst") as open_:
        if open_:
            audit_panel.audit_section(run)
    with section(tabs, "Confusion matrices") as open_:
        if open_:
            _confusion_section(models, run.label_names)
    with section(tabs, "Provenance") as open_:
        if open_:
            _provenance(run, teacher)


def _headline(run, metrics: dict, models: dict) -> None:
    """The teacher's accuracy and the most faithful distilled student's fidelity, speed-up and size, with intervals."""
    distilled = [n for n, entry in run.info.students.items() if entry.distilled and n in models]
    no_gold = metrics.get("gold_labels") is False
    if no_gold:
        st.info("This run's data has no gold labels: the teacher labelled every text, so accuracy columns say "
                "*no gold labels*; fidelity and the explanation metrics compare each student with the teacher.")
    if distilled:
        best = max(distilled, key=lambda n: models[n].get("fidelity") or 0)
        entry, teacher_entry = models[best], models.get("teacher", {})
        cols = st.columns(4)
        cols[0].metric("Teacher accuracy", _number(teacher_entry, "accuracy", no_gold),
                       help=f"95% interval {format_interval(teacher_entry.get('accuracy_ci')) or 'not stored'}.")
        cols[1].metric(f"Fidelity of {safe.md(best)}", _number(entry, "fidelity", no_gold),
                       help="Share of test texts on which the student predicts the teacher's class; 95% interval "
                            f"{format_interval(entry.get('fidelity_ci')) or 'not stored'}.")
        cols[2].metric(f"{safe.md(best)} speed-up", f"{entry.get('speedup_vs_teacher', float('nan')):.0f}×",
                       help="Texts per second of the student over the teacher's, on the CPU.")
        if entry.get("smaller_than_teacher"):
            cols[3].metric(f"{safe.md(best)} is smaller by", f"{entry['smaller_than_teacher']:.0f}×",
                           help="Teacher bytes on disk over student bytes on disk.")
        spans = [f"{safe.md(label)} {format_interval(e.get(f'{key}_ci'))}" for label, e, key in
                 (("teacher accuracy", teacher_entry, "accuracy"), (f"fidelity of {best}", entry, "fidelity"))
                 if format_interval(e.get(f"{key}_ci"))]
        if spans:
            st.caption(f"95% intervals on {metrics.get('test_size', '?')} test texts: " + "; ".join(spans)
                       + ". Every share in the card below has one (Wilson; macro-F1 by bootstrap).")


def _card(run, card: pd.DataFrame, models: dict) -> None:
    """The model card and the distilled-vs-label-trained margins."""
    st.subheader("Model card")
    formats = {**_FORMATS, **{title: "%.3f" for title in state.CARD_EXPLANATION_COLUMNS.values()}}
    agreement_titles = {state.CARD_EXPLANATION_COLUMNS[m] for m in ("spearman", "top_k_overlap")}
    config = {c: st.column_config.NumberColumn(c, format=f, help=TEACHER_NOTE if c in agreement_titles else None)
              for c, f in formats.items() if c in card.columns and pd.api.types.is_numeric_dtype(card[c])}
    st.dataframe(card, hide_index=True, column_config=config, width="stretch", placeholder=NO_VALUE)
    twins = _twins(card, run.twins(), models)
    if not twins.empty:
        st.markdown("**Distilled vs label-trained** (same architecture; the twin learns from gold labels only; "
                    "the margin is the difference in fidelity on the same test texts)")
        st.dataframe(twins, hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(c, format="%.3f") for c in twins.columns[1:]
                                    if pd.api.types.is_numeric_dtype(twins[c])})


def _explanation_section(metrics: dict, run) -> None:
    st.subheader("Explanation agreement and faithfulness")
    explanations = metrics.get("explanations")
    if explanations and explanations.get("summary"):
        st.caption(f"On {explanations.get('sample_size', '?')} test texts with "
                   f"{safe.md(', '.join(explanations.get('methods', [])))}; one tab per method. Hover a column header "
                   "for its definition (all are under *Definitions*).")
        _explanation_tables(pd.DataFrame(explanations["summary"]))
    else:
        st.caption("Not computed for this run. Add them with "
                   + safe.code(f"python -m kdcore evaluate --run {run.path} --explain-sample 60")
                   + ", or see any single text on the Explain page.")


def _confusion_section(models: dict, label_names) -> None:
    matrices = {n: e["confusion_matrix"] for n, e in models.items() if "confusion_matrix" in e}
    st.subheader("Confusion matrices")
    if not matrices:
        st.caption("None in this run's metrics.")
        return
    columns = st.columns(min(len(matrices), 5))
    for i, (name, matrix) in enumerate(matrices.items()):
        columns[i % len(columns)].plotly_chart(charts.confusion_heatmap(matrix, label_names, name),
                                               width="stretch", key=f"confusion_{name}")


def _provenance(run, teacher: dict) -> None:
    st.subheader("Provenance: data and weight hashes, versions, configurations")
    datasets = run.manifest.get("datasets", {})
    rows = [{"split": s, "texts": d.get("size"), "sha256": d.get("hash")} for s, d in datasets.items()]
    transfer = run.manifest.get("transfer_set")
    if transfer:
        rows.append({"split": "transfer set", "texts": transfer.get("size"), "sha256": transfer.get("hash")})
    st.markdown("**Data**")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.markdown(f"**Teacher weights** sha256 {safe.code(teacher.get('fingerprint', '?'))}")
    files = run.manifest.get("files", {})
    weights = [{"file": f, "sha256": h} for f, h in files.items() if f.endswith((".safetensors", "vocab.json"))]
    st.dataframe(pd.DataFrame(weights), hide_index=True, width="stretch")
    st.markdown("**Package versions**")
    st.json(run.manifest.get("package_versions", {}), expanded=False)
    st.markdown("**Configurations**")
    st.json({"teacher": teacher.get("config"), "distill": run.manifest.get("distill"),
             "students": {n: i.get("config") for n, i in run.manifest.get("students", {}).items()}},
            expanded=False)


_TAG_FORMATS = {"entity_f1": "%.3f", "word_fidelity": "%.3f", "entity_agreement_f1": "%.3f", "MB": "%.2f",
            "sentences/s": "%.0f", "parameters": "%d"}


def _draw_tags(key: state.RunKey) -> None:
    from kdcore.tasks.token.metrics import token_metrics_table

    run = state.meta(key)
    metrics = run.metrics or {}
    models = metrics.get("models", {})
    st.title(f"Run {safe.md(run.name)}")
    types = sorted({t[2:] for t in run.label_names if t != "O"})
    st.caption(f"Token classification (one BIO tag a word; every model read with the BIO-valid Viterbi decoding) · "
               f"teacher {safe.code(run.manifest.get('teacher', {}).get('source', '?'))} · entity types "
               f"{safe.md(', '.join(types))} · "
               f"test set {metrics.get('test_size', '?')} sentences, {metrics.get('test_words', '?')} words")
    if not models:
        st.warning("This run has no metrics.json; rebuild it.")
        return
    teacher = models.get("teacher", {})
    distilled = [n for n, e in run.info.students.items() if e.distilled and n in models]
    cols = st.columns(3)
    cols[0].metric("Teacher entity F1 (test)", f"{teacher.get('entity_f1', float('nan')):.3f}",
                   help="Gold entities, exact span and type, micro-averaged over types.")
    if distilled:
        best = max(distilled, key=lambda n: models[n].get("entity_agreement_f1") or 0)
        cols[1].metric(f"Word fidelity of {safe.md(best)}", f"{models[best].get('fidelity', float('nan')):.3f}",
                       help="Share of test words on which the student's tag equals the teacher's.")
        cols[2].metric(f"Entity agreement of {safe.md(best)}", f"{models[best].get('entity_agreement_f1', float('nan')):.3f}",
                       help="F1 of the student's entities with the teacher's entities as reference (exact span and type).")
    st.subheader("Model card")
    card = token_metrics_table(metrics)
    st.dataframe(card, hide_index=True, width="stretch", placeholder="—",
                 column_config={c: st.column_config.NumberColumn(c, format=f) for c, f in _TAG_FORMATS.items()
                                if c in card.columns})
    margins = metrics.get("margins", {})
    if margins:
        st.markdown("**Distilled vs label-trained twin**: entity agreement F1 with the teacher, difference and "
                    f"{round(100 * next(iter(margins.values())).get('level', 0.95))}% bootstrap interval over test sentences")
        rows = [{"student": name, "twin": m["twin"], "distilled": models[name].get("entity_agreement_f1"),
                 "twin's": models[m["twin"]].get("entity_agreement_f1"), "difference": m["difference"],
                 "low": m["low"], "high": m["high"], "word fidelity difference": m.get("word_fidelity_difference")}
                for name, m in margins.items()]
        frame = pd.DataFrame(rows)
        st.dataframe(frame, hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(c, format="%.3f") for c in frame.columns[2:]})
    # Every section below the card is drawn when its tab is opened (the first one on the first load).
    tabs = lazy_sections(TOKEN_SECTIONS, key="overview_sections")
    with section(tabs, "Gold entities per type") as open_:
        if open_:
            _gold_per_type(models)
    with section(tabs, "Per entity type against the teacher") as open_:
        if open_:
            _per_tag_section(metrics.get("per_tag"), run.path)
    with section(tabs, "Where students stand in") as open_:
        if open_:
            trust_panel.trust_section(state.trust(key), run.path)
            st.caption("For tags, a student stands in on a sentence when its entities (exact span and type) are the "
                       "teacher's; a sentence's stand-in score is its least sure word's.")
            trust_panel.entity_trust_section(state.trust(key))
    with section(tabs, "Explanation agreement") as open_:
        if open_:
            _token_explanations(metrics.get("explanations") or {})


def _gold_per_type(models: dict) -> None:
    st.subheader("Gold entities per type")
    st.caption("Precision, recall and F1 per entity type on the test split (exact span and type), as seqeval's "
               "classification report.")
    names = [n for n in models if models[n].get("per_type")]
    for name, tab in zip(names, st.tabs([safe.md(n) for n in names]) if names else []):
        with tab:
            table = pd.DataFrame(models[name]["per_type"])
            st.dataframe(table, hide_index=True, width="stretch", height="content",
                         column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                                        for c in ("precision", "recall", "f1")})


def _token_explanations(explanations: dict) -> None:
    st.subheader("Explanation agreement with the teacher")
    if not explanations.get("summary"):
        st.caption("Not computed for this run.")
        return
    st.caption(f"On the first word of {explanations.get('sample_size', '?')} of the teacher's test entities: the "
               "teacher's integrated gradients for its tag there against each student's exact feature "
               "contributions, on the same words.")
    summary = pd.DataFrame(explanations["summary"])
    st.dataframe(summary, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                                for c in summary.columns if c.endswith(("_mean", "_std"))})


def _per_tag_section(block: dict | None, run_path) -> None:
    """kdcore's per-tag report: per entity type, the teacher on gold and each student against the teacher
    (with intervals), and the confusion between types as heatmaps."""
    from kdcore.tasks.token.per_tag import PER_TAG_DEFINITIONS, per_tag_table

    st.subheader("Per entity type: the teacher on gold, the students against the teacher")
    if not block:
        st.caption("Not in this run's metrics (built before kd-lens measured it). Add it with "
                   + safe.code(f"python -m kdcore evaluate --run {run_path} --refresh") + ".")
        return
    st.caption(f"{PER_TAG_DEFINITIONS['per-tag teacher']} {PER_TAG_DEFINITIONS['per-tag agreement']} After each "
               f"number, its 95% interval from resampling the {block.get('sentences', '?')} test sentences.")
    table = per_tag_table(block)
    st.dataframe(table, hide_index=True, width="stretch", height="content", placeholder="—", key="per_tag_table",
                 column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                                for c in table.columns if pd.api.types.is_float_dtype(table[c])})
    confusion = block.get("confusion") or {}
    if not confusion:
        return
    st.markdown("**Confusion between types**", help=PER_TAG_DEFINITIONS["type confusion"])
    columns = st.columns(min(len(confusion), 3))
    for i, (name, c) in enumerate(confusion.items()):
        figure = charts.type_confusion_heatmap(c["counts"], c["rows"], c["columns"], name, c.get("reference", ""), name)
        columns[i % len(columns)].plotly_chart(figure, width="stretch", key=f"type_confusion_{i}")
