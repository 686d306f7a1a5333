"""Batch: every model predicts every text of an uploaded file; disagreements flagged.

The file is read by kdcore.data (its messages are shown as they are for bad files); the
results table can be sorted, filtered, downloaded as CSV, and any row explained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import audit_batch, safe, upload
from dashboard.components.entities import model_entity_rows
from dashboard.components.explain_panel import explain_panel, method_controls
from dashboard.components.sidebar import draw_for_task, require_run

__all__ = ["render", "score_texts", "results_frame", "with_stand_ins"]

RESULTS_KEY = "batch_results"
BATCH_SIZE = 64
DEFAULT_MAX_ROWS = 2000
_EXAMPLE_DIR = state.EXAMPLES_DIR


def score_texts(key: state.RunKey, texts: list[str], progress=None) -> tuple[dict[str, np.ndarray], list[int]]:
    """({model: probabilities [n, classes]}, the teacher's windows per text), batch by batch;
    ``progress(fraction, message)``."""
    every = state.models(key)
    out: dict[str, list] = {name: [] for name in every}
    windows: list[int] = []
    steps = max(1, len(every) * ((len(texts) + BATCH_SIZE - 1) // BATCH_SIZE))
    done = 0
    for name, model in every.items():
        for start in range(0, len(texts), BATCH_SIZE):
            out[name].append(model.predict_proba(texts[start:start + BATCH_SIZE]))
            if name == "teacher":  # the teacher says how many windows each text took
                windows.extend(model.last_predict_info["window_counts"])
            done += 1
            if progress is not None:
                progress(done / steps, f"{name}: {min(start + BATCH_SIZE, len(texts))} of {len(texts)} texts")
    n_classes = len(state.meta(key).label_names)
    probs = {name: np.concatenate(parts) if parts else np.zeros((0, n_classes)) for name, parts in out.items()}
    return probs, [int(n) for n in windows]


def results_frame(texts: list[str], probs: dict[str, np.ndarray], label_names: list[str],
                  gold: list[str] | None = None) -> pd.DataFrame:
    """One row per text: each model's label, the teacher's confidence, and the students'
    agreement with the teacher (share of students predicting the teacher's class)."""
    labels = np.asarray(label_names, dtype=object)
    frame = pd.DataFrame({"row": np.arange(1, len(texts) + 1), "text": texts})
    if gold is not None:
        frame["gold"] = gold
    teacher = probs["teacher"].argmax(axis=1)
    frame["teacher"] = labels[teacher]
    frame["p(teacher)"] = probs["teacher"].max(axis=1)
    students = [n for n in probs if n != "teacher"]
    agree = np.zeros(len(texts))
    for name in students:
        predicted = probs[name].argmax(axis=1)
        frame[name] = labels[predicted]
        agree += predicted == teacher
    frame["agreement"] = agree / max(1, len(students))
    frame["disagreement"] = frame["agreement"] < 1.0
    return frame


def with_stand_ins(frame: pd.DataFrame, verdicts: dict) -> pd.DataFrame:
    """The results with each student's calibrated p(agrees) and stand-in flag (kdcore.trust.assess: likely,
    and not disagreeing with the teacher on that text)."""
    frame = frame.copy()
    for name, per_text in verdicts.items():
        frame[f"{name} p(agrees)"] = [v.probability for v in per_text]
        frame[f"{name} stand-in"] = [v.stands_in for v in per_text]
    return frame


def _sort_and_filter(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by a student's p(agrees) (lowest first) and keep only rows with an unlikely stand-in, when asked."""
    columns = [c for c in frame.columns if c.endswith(" p(agrees)")]
    if not columns:
        return frame
    left, right = st.columns(2)
    sort_by = left.selectbox("Sort by", ["row", *columns], key="batch_sort",
                             help="A student's calibrated probability of agreeing with the teacher, lowest first.")
    if right.toggle("Only texts with an unlikely stand-in", value=False, key="batch_only_unlikely",
                    help="Rows where at least one student is not a likely stand-in for the teacher."):
        flags = frame[[c for c in frame.columns if c.endswith(" stand-in")]]
        frame = frame[~flags.all(axis=1)]
    return frame if sort_by == "row" else frame.sort_values(sort_by, kind="stable")


def _summary(probs: dict[str, np.ndarray], gold_ids: np.ndarray | None) -> pd.DataFrame:
    """Per model: label agreement with the teacher, and accuracy when the file's labels are the run's classes,
    each with its 95% interval (kdcore's Wilson interval: a file of 50 texts says little)."""
    from kdcore.intervals import format_interval, wilson
    from kdcore.metrics import accuracy, fidelity

    teacher_logits = np.log(np.clip(probs["teacher"], 1e-12, 1.0))
    rows = []
    for name, p in probs.items():
        agreement = fidelity(np.log(np.clip(p, 1e-12, 1.0)), teacher_logits)
        row = {"model": name, "fidelity": agreement["fidelity"],
               "fidelity 95% CI": format_interval(agreement["fidelity_ci"])}
        if gold_ids is not None:
            predicted = p.argmax(axis=1)
            row["accuracy"] = accuracy(gold_ids, predicted)
            row["accuracy 95% CI"] = format_interval(wilson(int((predicted == gold_ids).sum()), len(gold_ids)))
        rows.append(row)
    return pd.DataFrame(rows)


def _rows(rows: list[int], shown: int = 8) -> str:
    """``"2, 5, 9 and 4 more"``."""
    head = ", ".join(map(str, rows[:shown]))
    return head + (f" and {len(rows) - shown} more" if len(rows) > shown else "")


def _source() -> tuple[bytes, str] | None:
    """The chosen file's bytes and name (uploaded, or one of the shipped examples)."""
    choice = st.radio("Data", ["Upload a file", "An example file"], horizontal=True, key="batch_source")
    if choice == "An example file":
        files = sorted(p.name for p in _EXAMPLE_DIR.glob("*") if p.suffix.lower()[1:] in upload.UPLOAD_TYPES) \
            if _EXAMPLE_DIR.is_dir() else []
        if not files:
            st.info("No example files in assets/examples.")
            return None
        name = st.selectbox("Example file", files, key="batch_example")
        return (_EXAMPLE_DIR / name).read_bytes(), name
    limit = upload.upload_limit_mb()
    uploaded = st.file_uploader(f"CSV, TSV, JSONL, JSON or TXT (one text per line), up to {limit} MB",
                                type=upload.UPLOAD_TYPES, key="batch_upload")
    if uploaded is None:
        st.caption("A CSV or JSONL needs a text column (e.g. `text`, `review`) and may have a label column; "
                   "a TXT file holds one text per line.")
        return None
    too_big = upload.check_size(uploaded.size, limit)
    if too_big:
        st.error(too_big)
        return None
    return uploaded.getvalue(), uploaded.name


def render() -> None:
    """Draw the run's page as its task's output asks (a label per text, or tags per word)."""
    key = require_run()
    if key is not None:
        draw_for_task(key, {"MulticlassPreds": _draw_labels, "SequenceTags": _draw_tags})


def _draw_labels(key: state.RunKey) -> None:
    """The page of a run that labels texts: read a file, score it with every model, table it, explain a row."""
    run = state.meta(key)
    st.title("Batch predictions")
    st.caption("Upload texts; every model predicts each one, and rows where a student disagrees with the teacher "
               "are flagged.")
    source = _source()
    if source is None:
        return
    data, filename = source
    dataset = _read_dataset(data, filename)
    if dataset is None:
        return
    max_rows = int(st.number_input("Rows to score", min_value=1, max_value=len(dataset),
                                   value=min(len(dataset), DEFAULT_MAX_ROWS), key="batch_max_rows",
                                   help="The teacher is the slow model: score a sample of a large file first."))
    texts = list(dataset.texts[:max_rows])
    gold, gold_ids = _gold_labels(dataset, run.label_names, max_rows)
    probs, windows = _scores(key, dataset, texts, max_rows)
    frame = _results(key, texts, probs, windows, run.label_names, gold)
    shown = _results_tables(frame, probs, gold_ids, texts)
    st.download_button("Download results (CSV)", safe.csv_bytes(frame),
                       file_name=f"{run.name}-{Path(filename).stem}-predictions.csv", mime="text/csv",
                       key="batch_download", on_click="ignore")
    _explain_a_row(key, shown, texts, run.label_names)


def _read_dataset(data: bytes, filename: str):
    """The file read by kdcore.data with the chosen columns, its report shown; None (the error shown) if it
    cannot be read."""
    columns = upload.peek_columns(data, filename)
    text_column, label_column = upload.DETECT, upload.DETECT
    if Path(filename).suffix.lower() != ".txt":
        left, right = st.columns(2)
        text_column = left.selectbox("Text column", [upload.DETECT, *columns], key="batch_text_column")
        label_column = right.selectbox("Label column (optional)", [upload.DETECT, upload.NO_LABELS, *columns],
                                       key="batch_label_column")
    try:
        dataset = upload.read_upload(data, filename, text_column, label_column)
    except ValueError as err:  # kdcore.data.DataError: the message says what to do
        st.error(safe.md(err))
        return None
    report = getattr(dataset, "report", None)
    if report is not None:
        st.caption(safe.md(report.summary()))
        for warning in report.warnings:
            st.warning(safe.md(warning))
    return dataset


def _gold_labels(dataset, label_names: list[str], max_rows: int) -> tuple[list[str] | None, np.ndarray | None]:
    """(the file's labels of the scored rows, their class ids in the run): the ids are None when the file's
    classes are not the run's (said on the page), both None when the file has no labels."""
    gold = None
    gold_ids = None
    if dataset.labels is not None:
        gold = [dataset.label_names[i] for i in dataset.labels[:max_rows]]
        if set(dataset.label_names) <= set(label_names):
            gold_ids = np.asarray([label_names.index(g) for g in gold])
        else:
            st.caption(f"The file's labels ({safe.md(', '.join(dataset.label_names))}) are not the run's classes "
                       f"({safe.md(', '.join(label_names))}): shown, but no accuracy is computed.")
    return gold, gold_ids


def _scores(key: state.RunKey, dataset, texts: list[str], max_rows: int) -> tuple[dict[str, np.ndarray], list[int]]:
    """:func:`score_texts` of the rows, kept in the session until the run, the file or the row count changes."""
    cache_id = (key, dataset.content_hash(), max_rows)
    stored = st.session_state.get(RESULTS_KEY)
    if stored is None or stored[0] != cache_id:
        state.full_run(key)
        bar = st.progress(0.0, text="Predicting…")
        probs, windows = score_texts(key, texts, progress=lambda f, m: bar.progress(f, text=m))
        bar.empty()
        st.session_state[RESULTS_KEY] = (cache_id, probs, windows)
    else:
        probs, windows = stored[1], stored[2]
    return probs, windows


def _results(key: state.RunKey, texts: list[str], probs: dict[str, np.ndarray], windows: list[int],
             label_names: list[str], gold: list[str] | None) -> pd.DataFrame:
    """The results table: :func:`results_frame` with the teacher's windows (said on the page when a text has
    several), the trust stand-ins and the hybrid's columns."""
    frame = results_frame(texts, probs, label_names, gold)
    long_rows = [i + 1 for i, n in enumerate(windows) if n > 1]
    if long_rows:
        frame.insert(2, "teacher windows", windows)
        st.info(f"{len(long_rows)} of {len(texts)} texts are longer than the teacher's window "
                f"({state.full_run(key).teacher.max_length} tokens; rows {_rows(long_rows)}): the teacher's "
                "prediction is the mean of its windows' logits, and *Explain a row* explains them window by "
                "window. The students read the whole text.")
    if state.trust(key) is not None:
        teacher_classes = tuple(int(c) for c in probs["teacher"].argmax(axis=1))
        frame = with_stand_ins(frame, state.stand_ins(key, tuple(texts), None, teacher_classes))
    return audit_batch.with_hybrid(key, frame, probs, label_names)


def _results_tables(frame: pd.DataFrame, probs: dict[str, np.ndarray], gold_ids: np.ndarray | None,
                    texts: list[str]) -> pd.DataFrame:
    """Draw the counts, the per-model summary and the sorted, filtered results; return the rows shown."""
    n_disagree = int(frame["disagreement"].sum())
    st.markdown(f"**{len(frame)} texts** · **{n_disagree}** with a student that disagrees with the teacher")
    st.dataframe(_summary(probs, gold_ids), hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(c, format="%.3f") for c in ("fidelity", "accuracy")})
    only = st.toggle("Only disagreements", value=False, key="batch_only_disagreements")
    shown = _sort_and_filter(audit_batch.slice_filter(frame[frame["disagreement"]] if only else frame, texts))
    trust_config = {c: st.column_config.ProgressColumn(c, min_value=0.0, max_value=1.0, format="%.2f")
                    for c in shown.columns if c.endswith(" p(agrees)")}
    st.dataframe(shown, hide_index=True, width="stretch", column_config={**trust_config,
        "p(teacher)": st.column_config.ProgressColumn("p(teacher)", min_value=0.0, max_value=1.0, format="%.2f"),
        "agreement": st.column_config.NumberColumn("agreement", format="%.2f",
                                                   help="Share of students that predict the teacher's class."),
        "disagreement": st.column_config.CheckboxColumn("disagreement"),
        "text": st.column_config.TextColumn("text", width="large"),
    })
    return shown


def _explain_a_row(key: state.RunKey, shown: pd.DataFrame, texts: list[str], label_names: list[str]) -> None:
    """Pick one of the shown rows and explain its text."""
    st.subheader("Explain a row")
    rows = shown["row"].tolist()
    if not rows:
        st.caption("No rows to explain.")
        return
    row = st.selectbox("Row", rows, key="batch_row",
                       format_func=lambda r: f"#{r} · {texts[r - 1][:90]}{'…' if len(texts[r - 1]) > 90 else ''}")
    settings = method_controls(label_names, prefix="batch")
    explain_panel(key, texts[row - 1], settings, prefix="batch")


def _draw_tags(key: state.RunKey) -> None:
    st.title("Where the students disagree with the teacher")
    st.caption("Per test sentence: the words whose tag differs from the teacher's and the entities (exact span and "
               "type) a student misses or adds, summed over the students in 'total'.")
    table = state.tag_disagreements(key)
    only = st.toggle("Only sentences with a disagreement", value=True, key="token_batch_only")
    shown = table[table["total"] > 0] if only else table
    st.dataframe(shown, hide_index=True, width="stretch", key="token_batch_table")
    st.download_button("Download as CSV", safe.csv_bytes(shown), file_name="disagreements.csv",
                       mime="text/csv", key="token_batch_csv", on_click="ignore")
    if shown.empty:
        return
    index = st.selectbox("Look at a sentence", shown["sentence"].tolist(), key="token_batch_pick",
                         format_func=lambda i: table.loc[table["sentence"] == i, "text"].iloc[0][:120])
    sentences, _ = state.test_sentences(key)
    types = state.entity_types(key)
    model_entity_rows(key, sentences[index], {name: tags[index] for name, tags in state.test_tags(key).items()}, types)
