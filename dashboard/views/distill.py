"""Distill: start a new run in the background and follow it live.

The form's choices become a kdcore RunSpec, written as JSON under the runs folder; the run is
built by ``python -m kdcore distill --spec FILE --progress-file F``, started detached (it
survives this page being closed); this view follows its progress file. A failed
build shows its reason and leaves every existing run as it was (kdcore builds a run in a
``.partial`` folder and publishes it only when complete).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import streamlit as st

from kdcore.config import DataSource, DistillConfig, RunSpec, StudentConfig, default_students
from kdcore.tasks import detect_task, get_task, task_names

from dashboard import jobs, navigation, state
from dashboard.components import charts, safe, upload
from dashboard.components.sidebar import choose_run

__all__ = ["render", "build_spec"]

UPLOADS = ".uploads"
_TEACHER_CHOICES = ("The current run's teacher", "A local folder", "A Hugging Face hub id")
_DATA_CHOICES = ("The default corpus (Rotten Tomatoes)", "Upload a file", "The 2016 debates (three classes)",
                 "WNUT-16 tweets (entities: one tag a word)")
# The embedded corpus each choice names (the upload names none).
_DATA_CORPORA = {_DATA_CHOICES[0]: "rotten_tomatoes", _DATA_CHOICES[2]: "debates", _DATA_CHOICES[3]: "wnut16"}


def _upload_path(data: bytes, filename: str, run_name: str = "") -> Path:
    """Where an upload goes for the job building ``run_name``: <runs>/.uploads/<run name>-<hash><suffix> (each
    job its own copy, as each job removes its copy when it ends). Nothing is written here: the file is written
    only when the job starts (:func:`_save_upload`). Without a run name: the upload's identity for the checks."""
    suffix = Path(filename).suffix.lower()
    digest = hashlib.sha256(data).hexdigest()[:16]
    return (state.runs_dir() / UPLOADS / f"{run_name + '-' if run_name else ''}{digest}{suffix}").resolve()


def _save_upload(data: bytes, target: Path) -> Path:
    """Write uploaded data to ``target`` (see :func:`_upload_path`) for the job that starts now."""
    from kdcore.utils import atomic_write_bytes

    atomic_write_bytes(target, data)
    return target


def _sweep_uploads(runs_dir: Path, min_age_s: float = 60.0) -> None:
    """Remove uploads that no running job reads (left by a job killed before it could remove its own); one
    younger than ``min_age_s`` may belong to a job another session is starting now, and is kept."""
    folder = runs_dir / UPLOADS
    if not folder.is_dir():
        return
    needed = " ".join(str(arg) for job in jobs.list_jobs(runs_dir) if jobs.job_status(job)[0] == "running"
                      for arg in job.command)
    for path in folder.iterdir():
        if path.is_file() and str(path.resolve()) not in needed and time.time() - path.stat().st_mtime > min_age_s:
            path.unlink(missing_ok=True)


def build_spec(name: str, teacher: str, encoder: bool, data: Path | None, text_column: str | None,
               label_column: str | None, students: list[str], loss: str, temperature: float, alpha: float,
               augment_copies: int, student_steps: int, teacher_epochs: float,
               corpus: str = "rotten_tomatoes", label_map: str = "", labels_by_index: bool = False,
               task: str | None = None) -> RunSpec:
    """The RunSpec of the form's choices: the same spec ``python -m kdcore distill`` builds from the same
    options (its ``--student-steps`` is ``student_steps``, ``--label-map`` is ``label_map``). ValueError
    says what to fix. The task is ``task`` when named (an upload's, read before its file is written), else the one
    the data file or the embedded corpus shows (kdcore.tasks.detect_task), with that task's fine-tuning settings."""
    task = detect_task(data=str(data) if data is not None else None, corpus=corpus, named=task)
    return RunSpec(
        name, task=task.name, teacher_source=teacher, teacher_is_encoder=encoder,
        teacher=task.teacher_config(epochs=teacher_epochs), label_map=label_map or {}, labels_by_index=labels_by_index,
        students=default_students(students, int(student_steps), task=task.name),
        distill=DistillConfig(loss=loss, temperature=temperature, alpha=alpha, augment_copies=int(augment_copies)),
        data=DataSource(path=str(data) if data is not None else None, text_column=text_column,
                        label_column=label_column, corpus=corpus))


def _teacher_choice(current: state.RunKey | None) -> tuple[str, bool, str, bool]:
    """(teacher source, whether it is a bare encoder, label map, match classes by position) from the form."""
    teacher_choices = list(_TEACHER_CHOICES if current is not None else _TEACHER_CHOICES[1:])
    teacher_kind = st.radio("Teacher", teacher_choices, horizontal=True, key="distill_teacher_kind")
    encoder = False
    if teacher_kind == _TEACHER_CHOICES[0]:
        teacher = str(Path(current.path) / "teacher")
        st.caption(safe.code(teacher))
    elif teacher_kind == _TEACHER_CHOICES[1]:
        teacher = st.text_input("Teacher folder", key="distill_teacher_dir",
                                placeholder="/path/to/a/fine-tuned/bert-classifier").strip()
    else:
        teacher = st.text_input("Hub id", key="distill_teacher_hub",
                                placeholder="e.g. textattack/bert-base-uncased-rotten-tomatoes").strip()
        st.caption("A hub id needs network access (or the model in the local Hugging Face cache).")
    if teacher_kind != _TEACHER_CHOICES[0]:
        encoder = st.checkbox("It is a bare encoder: add a classification head and fine-tune it",
                              key="distill_encoder")
    label_map, by_index = "", False
    if not encoder:
        left, right = st.columns([3, 2])
        label_map = left.text_input(
            "Label mapping (teacher class=data class, …)", key="distill_label_map", placeholder="fresh=great,rotten=other",
            help="Needed when the teacher names its classes differently from the data; the same names in another "
                 "order are matched by name. Same as `--label-map`.").strip()
        by_index = right.checkbox("Its classes are placeholders (LABEL_0, …): match them by position",
                                  key="distill_labels_by_index", help="Same as `--labels-by-index`.")
    return teacher, encoder, label_map, by_index


def _upload_types() -> list[str]:
    """The file extensions some task reads (texts: CSV, TSV, JSONL, JSON, TXT; tagged words: CoNLL, ...)."""
    return sorted({ext.lstrip(".") for name in task_names() for ext in get_task(name).file_extensions})


@st.cache_data(show_spinner=False, max_entries=8)
def _upload_task(data: bytes, filename: str) -> str:
    """The name of the task an uploaded file shows (kdcore.tasks.detect_task), read from a temporary copy that
    is removed at once: nothing is written under the runs folder before a job starts."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kdlens-upload-") as folder:
        copy = Path(folder) / (hashlib.sha256(data).hexdigest()[:16] + Path(filename).suffix.lower())
        copy.write_bytes(data)
        return detect_task(data=str(copy)).name


def _data_choice() -> tuple:
    """(data choice, uploaded bytes, file name, the upload's task name, text column, label column) from the form.
    A file of tagged words (CoNLL, or JSONL with tokens / tags) makes a token run; it has no columns to pick."""
    data_kind = st.radio("Data", _DATA_CHOICES, horizontal=True, key="distill_data_kind")
    data_bytes, filename, task_name, text_column, label_column = None, None, None, None, None
    if data_kind == _DATA_CHOICES[1]:
        uploaded = st.file_uploader("Training data: texts (CSV, TSV, JSONL, JSON or TXT) or tagged words (CoNLL "
                                    "word / tag lines, or JSONL with tokens and tags)", type=_upload_types(),
                                    key="distill_upload")
        if uploaded is not None:
            data_bytes, filename = uploaded.getvalue(), uploaded.name
            task_name = _upload_task(data_bytes, filename)
            columns = upload.peek_columns(data_bytes, filename) if get_task(task_name) is get_task() else []
            if columns:
                left, right = st.columns(2)
                text_choice = left.selectbox("Text column", [upload.DETECT, *columns], key="distill_text_column")
                label_choice = right.selectbox("Label column", [upload.DETECT, *columns], key="distill_label_column")
                text_column = None if text_choice == upload.DETECT else text_choice
                label_column = None if label_choice == upload.DETECT else label_choice
    return data_kind, data_bytes, filename, task_name, text_column, label_column


def _students_and_loss(cols, task, suffix: str) -> tuple[list[str], str, float]:
    """(students, loss, temperature) from the form's first row of training choices."""
    # The kinds a run of this task can train (token runs: linear and MLP over word windows).
    kinds = task.student_choices()
    students = cols[0].multiselect("Students", kinds, default=kinds, key=f"distill_students{suffix}",
                                   help="aug_linear: a linear student whose n-gram scores also read the teacher's "
                                        "view of each n-gram (one extra teacher pass over the n-grams).")
    loss = cols[1].selectbox("Loss", ["kd_kl", "kd_mse", "hard_ce"], key="distill_loss",
                             help="kd_kl: T²·KL of softened distributions (Hinton); kd_mse: MSE on logits "
                                  "(Tang et al.); hard_ce: the teacher's argmax as a label.")
    temperature = cols[2].slider("Temperature", 0.1, 10.0, DistillConfig().temperature, 0.1, key="distill_temperature",
                                 disabled=loss != "kd_kl",
                                 help="kd_kl only; the default was chosen on the default corpus's dev split.")
    return students, loss, temperature


def _training_amounts(task, encoder: bool, suffix: str) -> tuple[float, int, int, float]:
    """(alpha, augmented copies, MLP steps, teacher fine-tuning epochs) from the form's second row."""
    cols = st.columns(4)
    alpha = cols[0].slider("alpha (gold-label weight)", 0.0, 1.0, 0.0, 0.05, key="distill_alpha")
    augment = cols[1].number_input("Augmented copies", 0, 10, 2, key="distill_augment")
    steps = cols[2].number_input("MLP training steps", 1, 1_000_000, StudentConfig().max_steps,
                                 key="distill_student_steps",
                                 help="Most Adam steps of the MLP (it stops sooner on a training-loss plateau); the "
                                      "linear student trains with L-BFGS until it converges.")
    # A bare encoder's head starts random, so it is always fine-tuned (the spec refuses 0 epochs for it).
    encoder_epochs = task.teacher_config().epochs  # a fresh token head needs more fine-tuning
    teacher_epochs = cols[3].number_input("Teacher fine-tuning epochs", 0.0 if not encoder else 0.5, 10.0,
                                          encoder_epochs if encoder else 0.0, 0.5,
                                          key=f"distill_teacher_epochs_{'encoder' if encoder else 'trained'}"
                                              f"{suffix}",
                                          help="0 uses a trained classifier as loaded; a bare encoder is fine-tuned, "
                                               f"for at least {task.teacher_config().min_steps} steps (more epochs on "
                                               "small data) and at most the steps cap.")
    return alpha, augment, steps, teacher_epochs


def _form(current: state.RunKey | None) -> None:
    """The new-run form: its choices, kdcore's checks of them, and the button that starts the run."""
    runs_dir = state.runs_dir()
    st.subheader("New run")
    name = st.text_input("Run name", value=f"distill-{time.strftime('%Y%m%d-%H%M')}", key="distill_name",
                         help="Letters, digits, '.', '_' or '-'; the run is written to the runs folder.")

    teacher, encoder, label_map, labels_by_index = _teacher_choice(current)
    data_kind, data_bytes, filename, task_name, text_column, label_column = _data_choice()
    data_path = _upload_path(data_bytes, filename) if data_bytes is not None else None  # not written yet

    st.markdown("**Students and loss**")
    cols = st.columns(3)
    task = detect_task(corpus=_DATA_CORPORA.get(data_kind), named=task_name)
    suffix = "" if task is get_task() else f"_{task.name}"  # each task's own widgets
    students, loss, temperature = _students_and_loss(cols, task, suffix)
    alpha, augment, steps, teacher_epochs = _training_amounts(task, encoder, suffix)

    def spec_named(run_name: str, data: Path | None = data_path) -> RunSpec:
        return build_spec(run_name, teacher, encoder, data, text_column, label_column, students, loss,
                          temperature, alpha, augment, steps, teacher_epochs,
                          corpus=_DATA_CORPORA.get(data_kind, "rotten_tomatoes"), label_map=label_map,
                          labels_by_index=labels_by_index, task=task.name)

    checked, spec_error = None, None
    if teacher and students and (data_kind != _DATA_CHOICES[1] or data_path is not None):
        try:  # the checks do not depend on the run's name
            checked = _show_checks(spec_named("preflight"), data_bytes if data_path is not None else None)
        except ValueError as err:
            spec_error = str(err)
            st.error(safe.md(spec_error))

    if not st.button("Start distillation", type="primary", key="distill_start"):
        return
    if _refuse_start(name, runs_dir, teacher, students, data_kind == _DATA_CHOICES[1] and data_path is None,
                     spec_error, checked):
        return
    _start_job(name, runs_dir, spec_named, data_bytes, filename, data_path)


def _refuse_start(name: str, runs_dir: Path, teacher: str, students: list[str], upload_missing: bool,
                  spec_error: str | None, checked) -> bool:
    """Whether the run cannot start (a taken or bad name, a missing choice, failed checks), said on the page."""
    from kdcore.runs import RunError, resolve_run_path

    try:
        path = resolve_run_path(name.strip(), runs_dir)
    except RunError as err:
        st.error(safe.md(err))
        return True
    if path.exists() or path.with_name(path.name + ".partial").exists():
        st.error(f"A run named {safe.md(repr(name.strip()))} already exists (or is being built) in "
                 f"{safe.code(runs_dir)}; choose another name.")
        return True
    if not teacher:
        st.error("Say which teacher to distill: a folder or a hub id.")
        return True
    if not students:
        st.error("Choose at least one student.")
        return True
    if upload_missing:
        st.error("Upload a data file, or use the default corpus.")
        return True
    if spec_error:
        return True  # shown above the button
    if checked is not None and not checked.ok:  # the checks above say what to fix; nothing is started
        st.error("The checks above found a problem: fix it, then start again.")
        return True
    return False


def _start_job(name: str, runs_dir: Path, spec_named, data_bytes: bytes | None, filename: str | None,
               data_path: Path | None) -> None:
    """Start the run's job in the background (with its own copy of an upload) and follow it."""
    from kdcore.runs import RunError

    job_data = _upload_path(data_bytes, filename, name.strip()) if data_path is not None else None
    spec = spec_named(name.strip(), job_data)
    try:
        if job_data is not None:
            _save_upload(data_bytes, job_data)
        job = jobs.start_run_job(runs_dir, spec, remove_after=[job_data] if job_data is not None else [])
    except (jobs.JobError, RunError, OSError) as err:
        st.error(safe.md(err))
        return
    st.session_state["distill_followed"] = job.name
    st.success(f"Started (pid {job.pid}). It goes on if you close this page; its log is {safe.code(job.log_file)}.")


@st.cache_data(show_spinner="Checking the data and the teacher's classes…", max_entries=8)
def _preflight(spec_json: str, _data: bytes | None = None):
    """kdcore's checks of a spec (cached per spec: an uploaded file is named by its hash, so ``_data``, the upload's
    bytes, need not be hashed). The upload is read from a temporary folder, removed when the checks end."""
    import json
    import tempfile

    from kdcore.preflight import preflight

    spec = RunSpec.from_dict(json.loads(spec_json))
    if _data is None:
        return preflight(spec)
    with tempfile.TemporaryDirectory(prefix="kdlens-upload-") as folder:
        copy = Path(folder) / Path(spec.data.path).name
        copy.write_bytes(_data)
        spec.data.path = str(copy)
        return preflight(spec)


_CHECKED_FIELDS = ("name", "task", "teacher_source", "teacher_is_encoder", "teacher", "label_map", "labels_by_index",
                   "data")


def _show_checks(spec: RunSpec, data: bytes | None = None):
    """The label and teacher checks' findings, and the classes, before anything starts (checked again
    only when what they depend on changes: not for a student or loss setting)."""
    import json

    result = _preflight(json.dumps({k: v for k, v in spec.to_dict().items() if k in _CHECKED_FIELDS}, sort_keys=True), data)
    with st.container(border=True):
        st.markdown("**Before you start: what the checks found**")
        for finding in result.findings:
            {"error": st.error, "warning": st.warning}.get(finding["level"], st.info)(safe.md(finding["message"]))
        if result.splits:
            st.caption("Splits: " + " · ".join(f"{safe.md(k)} {v:,}" for k, v in result.splits.items()))
        if result.class_counts:
            st.caption("Training rows per class: "
                       + " · ".join(f"{safe.md(k)} {v:,}" for k, v in result.class_counts.items()))
    return result


def _open_run(name: str) -> None:
    """Callback of a finished job's *Open* button: pick the run, show its Overview in the next full run."""
    choose_run(name)
    navigation.request("overview")


@st.fragment(run_every=2.0)
def _live_progress(job_name: str) -> None:
    """A running job's progress, polled from its progress file. When the job ends, the whole page reruns: it then
    draws the result without polling (so no fragment timer outlives the job), and the new run reaches the
    sidebar's picker."""
    job = next((j for j in jobs.list_jobs(state.runs_dir()) if j.name == job_name), None)
    if job is None:
        st.rerun(scope="app")
    events = jobs.read_events(job)
    status, message = jobs.job_status(job, events)
    if status != "running":
        st.rerun(scope="app")
    st.progress(jobs.stage_fraction(events), text=f"{safe.md(job.name)}: {safe.md(message)}…")
    if any(e.get("loss") is not None for e in events):
        st.plotly_chart(charts.loss_chart(events), width="stretch", key=f"distill_loss_{job.name}")


def _finished(job) -> None:
    """A finished job (drawn in a full run, outside any fragment): its result, and *Open* when it is done."""
    events = jobs.read_events(job)
    status, message = jobs.job_status(job, events)
    if status == "done":
        st.success(f"Run {safe.md(job.name)} is ready: pick it in the sidebar.")
        st.button(f"Open {safe.md(job.name)}", key=f"distill_open_{job.name}", on_click=_open_run, args=(job.name,))
    else:
        st.error(f"Run {safe.md(job.name)} failed: {safe.md(message)}")
        st.caption("Existing runs are untouched; a partial build is kept in `<name>.partial` and resumes if you "
                   "start the same command again.")
    if any(e.get("loss") is not None for e in events):
        st.plotly_chart(charts.loss_chart(events), width="stretch", key=f"distill_loss_{job.name}")


def _follow() -> None:
    """The background jobs: pick one; a running one is polled live, a finished one drawn once."""
    all_jobs = jobs.list_jobs(state.runs_dir())
    if not all_jobs:
        st.caption("No distillation started yet.")
        return
    names = [j.name for j in all_jobs]
    followed = st.session_state.get("distill_followed")
    index = names.index(followed) if followed in names else 0
    name = st.selectbox("Job", names, index=index, key="distill_job")
    job = all_jobs[names.index(name)]
    if jobs.job_status(job)[0] == "running":
        _live_progress(job.name)
    else:
        _finished(job)


def render() -> None:
    st.title("Distill a teacher")
    st.caption("Choose a teacher, data and students; the distillation runs in the background as "
               "`python -m kdcore distill` and the new run appears in the sidebar when it is done.")
    current = state.current_key()
    _sweep_uploads(state.runs_dir())
    left, right = st.columns([3, 2])
    with left:
        _form(current)
    with right:
        st.subheader("Progress")
        _follow()
