"""Where the dashboard keeps things: cached runs and models, cached tables, the chosen run.

Runs and models are ``st.cache_resource`` objects, shared by every session of the
server, so they are only read once loaded (a Run's models are loaded eagerly inside the
cached function; nothing mutates them afterwards). Everything computed from them
(predictions, explanations, tables) goes through ``st.cache_data``, which hands every
caller its own copy; the teacher's explanations alone are kept in an :class:`ExplanationStore`
(they draw their progress while computed), which hands out copies too. Every cache is keyed by a :data:`RunKey`: the run folder and its
manifest's modification time, so a rebuilt run is never served from a stale cache.

The only per-user state is ``st.session_state`` (the chosen run, widget values); there
is no module-level mutable state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import streamlit as st

from dashboard import access
from kdcore.runs import MANIFEST, Run, RunError, list_runs, load_run

__all__ = [
    "RunKey", "REPO_ROOT", "runs_dir", "run_key", "setup_process", "load_run_meta", "load_run_models",
    "current_key", "set_current_run", "metrics_frame", "test_split", "example_texts",
    "explain_all", "agreement_frame", "deletion_curves", "linear_weights", "mlp_importance",
    "weights_vs_attribution", "teacher_word_attribution", "report_documents", "available_runs", "RUN_STATE_KEY",
    "DASHBOARD_IG_STEPS", "EXPLAIN_IG_STEPS", "trust", "stand_ins", "teacher_probs", "teacher_class_name", "teacher_windows",
    "student_explanations", "teacher_explanation", "ExplanationStore",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_STATE_KEY = "kdlens_run_path"
EXAMPLES_DIR = REPO_ROOT / "assets" / "examples"
# Explanation metrics shown in the model card (kdcore.explain_metrics names -> column titles).
# Fewer IG steps than kdcore's default: on a CPU the teacher's IG dominates the page's latency
# and grows linearly with the steps; the convergence check still flags a text that needs more.
# Here (not in a component) because the cached teacher-attribution table uses it too.
DASHBOARD_IG_STEPS = 32
# The Explain and Batch pages' default: the fewest nested points within the delta tolerance (17 for most
# texts, about half the teacher's cost of 32 fixed steps; more where a text needs them).
EXPLAIN_IG_STEPS = "auto"
CARD_EXPLANATION_COLUMNS = {"spearman": "agreement (Spearman)", "top_k_overlap": "top-k overlap",
                            "comprehensiveness": "comprehensiveness", "sufficiency": "sufficiency"}


class RunKey(NamedTuple):
    """Identifies one version of a run: its folder and its manifest's mtime."""

    path: str
    mtime: float


def runs_dir() -> Path:
    """The runs folder: ``$KDLENS_RUNS_DIR`` or ``runs`` (relative to the working directory)."""
    return Path(os.environ.get("KDLENS_RUNS_DIR", "runs"))


def run_key(path: str | os.PathLike) -> RunKey:
    """The key of the run in ``path``. In review mode only a published run of the runs folder is opened: any other
    folder is refused (RunError)."""
    path = Path(path).resolve()
    if access.review_mode() and path not in {p.resolve() for p in available_runs()}:
        raise RunError("This dashboard is in review mode: it shows only the runs published in its runs folder, and "
                       "opens no other folder. Pick a run in the list.")
    manifest = path / MANIFEST
    if not manifest.is_file():
        raise RunError(f"{path} is not a finished kd-lens run (no {MANIFEST}). Build one with `python -m kdcore demo`.")
    return RunKey(str(path), manifest.stat().st_mtime)


@st.cache_resource(show_spinner=False)
def setup_process() -> int:
    """Set torch's thread count once per server process (every session shares it)."""
    from kdcore.utils import configure_threads

    env = os.environ.get("KDLENS_THREADS")
    return configure_threads(int(env) if env else min(os.cpu_count() or 1, 4))


def available_runs() -> list[Path]:
    return list_runs(runs_dir())


@st.cache_resource(show_spinner="Checking the run's files…", max_entries=8)
def load_run_meta(path: str, mtime: float) -> Run:
    """The run's manifest and metrics, every file checked against its hash (models not loaded)."""
    return load_run(path, verify=True)


@st.cache_resource(show_spinner="Loading the teacher and the students…", max_entries=3)
def load_run_models(path: str, mtime: float) -> Run:
    """A run with every model loaded (its own Run object, never mutated after this)."""
    setup_process()
    meta = load_run_meta(path, mtime)
    run = Run(path=meta.path, manifest=meta.manifest, metrics=meta.metrics)
    run.models()
    return run


def current_key() -> RunKey | None:
    """The run chosen in this session's sidebar (None when there is none)."""
    path = st.session_state.get(RUN_STATE_KEY)
    if not path:
        return None
    try:
        return run_key(path)
    except RunError:
        return None


def set_current_run(path: str | os.PathLike | None) -> None:
    st.session_state[RUN_STATE_KEY] = str(path) if path else None


def meta(key: RunKey) -> Run:
    return load_run_meta(key.path, key.mtime)


def models(key: RunKey) -> dict:
    """{name: model}, teacher first (shared objects: read only)."""
    return load_run_models(key.path, key.mtime).models()


def full_run(key: RunKey) -> Run:
    return load_run_models(key.path, key.mtime)


# ------------------------------------------------------------------------------ tables
@st.cache_data(show_spinner=False, max_entries=16)
def metrics_frame(key: RunKey):
    """The model card: kdcore's metrics table, with explanation metrics when the run has them."""
    from kdcore.metrics import metrics_table

    run = meta(key)
    frame = metrics_table(run.metrics)
    if frame.empty:
        return frame
    students = run.info.students
    frame.insert(2, "twin of", [students[name].twin_of or "" if name in students else "" for name in frame["model"]])
    block = run.metrics.get("explanations") or {}
    summary = block.get("summary") or []
    if summary:
        import pandas as pd

        summary = pd.DataFrame(summary)
        if "method" in summary.columns:
            # The card shows the first method's numbers; the Overview lists every method.
            summary = summary[summary["method"] == summary["method"].iloc[0]]
        wanted = {f"{metric}_mean": title for metric, title in CARD_EXPLANATION_COLUMNS.items()}
        present = [c for c in wanted if c in summary.columns]
        if "model" in summary.columns and present:
            summary = summary[["model", *present]].rename(columns=wanted)
            frame = frame.merge(summary, on="model", how="left")
    return frame


@st.cache_data(show_spinner=False, max_entries=16)
def trust(key: RunKey):
    """kdcore's trust record of the run (kdcore.trust.RunTrust), None for a run built without one."""
    from kdcore.trust import load_trust

    return load_trust(meta(key))


@st.cache_data(show_spinner=False, max_entries=128)
def stand_ins(key: RunKey, texts: tuple[str, ...], names: tuple[str, ...] | None = None,
              teacher_classes: tuple[int, ...] | None = None) -> dict:
    """{student: one kdcore StandIn per text} (score, calibrated p(agrees), likely, and whether it agrees
    with the teacher's class where that is given): kdcore.trust.assess."""
    from kdcore.trust import assess

    return assess(trust(key), {n: m for n, m in _selected(key, names).items() if n != "teacher"}, list(texts),
                  teacher_classes)


@st.cache_data(show_spinner=False, max_entries=16)
def test_split(key: RunKey) -> tuple[list[str], list[int] | None]:
    """Texts and labels of the run's test split ([] when the run stores none)."""
    try:
        data = meta(key).split("test")
    except (RunError, ValueError):
        return [], None
    return list(data.texts), (data.labels.tolist() if data.labels is not None else None)


@st.cache_data(show_spinner=False)
def example_texts() -> list[str]:
    """Texts of the example files shipped in assets/examples (read by kdcore's readers)."""
    from kdcore.data import DataError
    from kdcore.readers import read_any

    texts: list[str] = []
    if EXAMPLES_DIR.is_dir():
        for path in sorted(EXAMPLES_DIR.iterdir()):
            try:
                texts.extend(read_any(path).texts)
            except (DataError, ValueError):
                continue
    return list(dict.fromkeys(texts))


def _selected(key: RunKey, names: Sequence[str] | None) -> dict:
    every = models(key)
    return {n: m for n, m in every.items() if names is None or n in names}


@st.cache_data(show_spinner=False, max_entries=128)
def explain_all(key: RunKey, text: str, method: str, target: str | None, options: tuple[tuple[str, Any], ...],
                names: tuple[str, ...] | None = None) -> dict:
    """{model name: Explanation} of ``text`` by every model for the same target class (with the teacher among
    them: the teacher's class unless ``target`` is given), from the same caches as the staged Explain page."""
    from kdcore.attribution import explain_many

    selected = _selected(key, names)
    if "teacher" not in selected:
        return explain_many(selected, text, method=method, target=target, **dict(options))
    target = target or teacher_class_name(key, text)
    students = tuple(n for n in selected if n != "teacher")
    return {"teacher": teacher_explanation(key, text, method, target, options),
            **(student_explanations(key, text, method, target, options, students) if students else {})}


@st.cache_data(show_spinner=False, max_entries=128)
def teacher_probs(key: RunKey, text: str):
    """The teacher's class probabilities of ``text`` (one forward pass, its windows' logits averaged)."""
    from kdcore.attribution import model_proba

    return model_proba(models(key)["teacher"], [text])[0]


@st.cache_data(show_spinner=False, max_entries=128)
def teacher_windows(key: RunKey, text: str) -> int:
    """How many windows the teacher reads ``text`` in (tokenizing only)."""
    return len(models(key)["teacher"].encode_windows(text))


def teacher_class_name(key: RunKey, text: str) -> str:
    """The class the teacher predicts for ``text``: the default target of every model's explanation."""
    import numpy as np

    return meta(key).label_names[int(np.argmax(teacher_probs(key, text)))]


@st.cache_data(show_spinner=False, max_entries=128)
def student_explanations(key: RunKey, text: str, method: str, target: str, options: tuple[tuple[str, Any], ...],
                         names: tuple[str, ...]) -> dict:
    """{student: Explanation} of ``text`` for the class ``target`` (a label name)."""
    from kdcore.attribution import explain_many

    return explain_many(_selected(key, names), text, method=method, target=target, **dict(options))


class ExplanationStore:
    """The teacher's explanations by (run, text, method, target, options): a bounded, thread-safe LRU.

    Not ``st.cache_data``: the teacher's explanation draws its progress while it runs, and a cached
    function's drawing is replayed on every cache hit. Held in ``st.cache_resource`` (one per server);
    :func:`teacher_explanation` hands every caller its own copy, as ``st.cache_data`` would.
    """

    def __init__(self, max_entries: int = 128):
        import collections
        import threading

        self._items: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)


@st.cache_resource(show_spinner=False)
def _teacher_store() -> ExplanationStore:
    return ExplanationStore()


def teacher_explanation(key: RunKey, text: str, method: str, target: str, options: tuple[tuple[str, Any], ...],
                        progress=None):
    """The teacher's Explanation of ``text`` for the class ``target`` (a label name); ``progress(done, total)``
    is called window group by window group while it is computed (never on a stored result)."""
    import copy

    from kdcore.attribution import explain

    store, store_key = _teacher_store(), (key, text, method, target, options)
    found = store.get(store_key)
    if found is None:
        found = explain(models(key)["teacher"], text, method=method, target=target, progress=progress,
                        **dict(options))[0]
        store.put(store_key, found)
    return copy.deepcopy(found)


@st.cache_data(show_spinner=False, max_entries=128)
def agreement_frame(key: RunKey, text: str, method: str, target: str | None,
                    options: tuple[tuple[str, Any], ...], names: tuple[str, ...] | None = None):
    """One row per student: kdcore's agreement of its explanation with the teacher's."""
    import pandas as pd

    from kdcore import explain_metrics  # imports torch: loaded by the pages that need it

    explanations = explain_all(key, text, method, target, options, names)
    teacher = explanations.get("teacher")
    if teacher is None:
        return pd.DataFrame()
    rows = []
    for name, expl in explanations.items():
        if name == "teacher":
            continue
        scores = explain_metrics.agreement(teacher, expl)
        rows.append({"student": name, **{k: v for k, v in dict(scores).items() if not isinstance(v, (list, dict))}})
    return pd.DataFrame(rows)


@st.cache_data(show_spinner=False, max_entries=128)
def deletion_curves(key: RunKey, text: str, method: str, target: str | None,
                    options: tuple[tuple[str, Any], ...], names: tuple[str, ...] | None = None) -> dict | None:
    """{model name: kdcore deletion curve} (words removed most-important first)."""
    from kdcore import explain_metrics  # imports torch: loaded by the pages that need it

    explanations = explain_all(key, text, method, target, options, names)
    every = models(key)
    return {name: explain_metrics.deletion_curve(every[name], expl) for name, expl in explanations.items()}


@st.cache_data(show_spinner=False, max_entries=16)
def linear_weights(key: RunKey, student: str):
    return models(key)[student].weights()


@st.cache_data(show_spinner="Computing the MLP's global importances…", max_entries=16)
def mlp_importance(key: RunKey, student: str, max_texts: int):
    texts, _ = test_split(key)
    if not texts:
        import pandas as pd

        return pd.DataFrame(columns=["feature", "class", "importance", "n_texts"])
    return models(key)[student].global_importance(texts, max_texts=max_texts)


@st.cache_data(show_spinner=False, max_entries=16)
def teacher_word_attribution(key: RunKey, n_texts: int, method: str, target: str):
    """kdcore's mean teacher attribution per word towards ``target`` over the first test texts."""
    from kdcore import explain_metrics  # imports torch: loaded by the pages that need it

    texts, _ = test_split(key)
    options = {"n_steps": DASHBOARD_IG_STEPS} if method == "integrated_gradients" else {}
    return explain_metrics.global_word_attribution(models(key)["teacher"], texts[:n_texts], method=method, target=target,
                                          **options)


@st.cache_data(show_spinner=False, max_entries=16)
def weights_vs_attribution(key: RunKey, student: str, n_texts: int, method: str, target: str):
    """(DataFrame(word, student_weight, teacher_mean_attribution, count), Spearman rho) from kdcore."""
    from kdcore import explain_metrics  # imports torch: loaded by the pages that need it

    teacher_words = teacher_word_attribution(key, n_texts, method, target)
    class_index = meta(key).label_names.index(target)
    return explain_metrics.weights_vs_attribution(models(key)[student], teacher_words, class_index=class_index)


@st.cache_data(show_spinner=False, max_entries=8)
def report_documents(key: RunKey, examples: tuple[str, ...], method: str) -> tuple[str, str]:
    """(HTML, JSON) of the run's report, built by kdcore.report."""
    import json

    from kdcore.report import build_report, render_html

    report = build_report(full_run(key), examples=list(examples), method=method)
    return render_html(report), json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False)


# ------------------------------------------------------------------------------ runs that tag words
@st.cache_data(show_spinner=False, max_entries=16)
def test_sentences(key: RunKey) -> tuple[list[list[str]], list[list[str]] | None]:
    """Words of each test sentence of a tagging run, and the gold tags (None when the run stores none)."""
    data = meta(key).split("test")
    gold = [data.tag_names(i) for i in range(len(data))] if data.has_labels else None
    return [list(s) for s in data.sentences], gold


def entity_types(key: RunKey) -> list[str]:
    """The entity types of a tagging run (its tags without B- / I-)."""
    from kdcore.tasks.token.bio import entity_types as types

    return types(meta(key).label_names)


@st.cache_data(show_spinner="Tagging the test sentences with every model…", max_entries=8)
def test_tags(key: RunKey) -> dict[str, list[list[str]]]:
    from kdcore.tasks.token.analysis import model_tags

    sentences, _ = test_sentences(key)
    return model_tags(models(key), sentences)


@st.cache_data(show_spinner=False, max_entries=64)
def entity_stand_ins(key: RunKey, sentences: tuple[tuple[str, ...], ...]) -> dict:
    """{student: per sentence {first word of each of its entities: calibrated p(agrees with the teacher)}}:
    kdcore.tasks.token.entity_trust.assess_entities over the run's trust record."""
    from kdcore.tasks.token.entity_trust import assess_entities

    students = {n: m for n, m in models(key).items() if n != "teacher"}
    return assess_entities(trust(key), students, [list(s) for s in sentences])


@st.cache_data(show_spinner="Explaining the word with every model…", max_entries=64)
def word_explanations(key: RunKey, words: tuple[str, ...], position: int, target: int | None):
    from kdcore.tasks.token.explain import word_explanations

    run = full_run(key)
    return word_explanations(run.teacher, run.students, list(words), position, target)


@st.cache_data(show_spinner="Reading the student's features…", max_entries=32)
def tag_features(key: RunKey, student: str, kind: str, top: int):
    from kdcore.tasks.token.analysis import top_features_by_type

    sentences, _ = test_sentences(key)
    return top_features_by_type(full_run(key).student(student), sentences, kind, top=top)


@st.cache_data(show_spinner="Reading the student's tag transitions…", max_entries=32)
def tag_transitions(key: RunKey, student: str):
    """The student's tag-transition table (a CRF's), or None when it tags each word alone."""
    from kdcore.tasks.token.analysis import transition_table

    return transition_table(full_run(key).student(student))


@st.cache_data(show_spinner=False, max_entries=8)
def tag_disagreements(key: RunKey):
    from kdcore.tasks.token.analysis import disagreement_table

    sentences, gold = test_sentences(key)
    return disagreement_table(sentences, test_tags(key), gold)
