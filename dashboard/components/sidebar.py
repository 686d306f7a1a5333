"""Sidebar widgets: the run picker, and the panel shown when there is no run yet."""

from __future__ import annotations

import time

import streamlit as st


from dashboard import access, jobs, state
from dashboard.components import safe
from kdcore.runs import RunError
from kdcore.tasks import task_of

__all__ = ["run_picker", "no_run_panel", "require_run", "draw_for_task", "CHOICE_KEY", "CUSTOM_KEY"]

CHOICE_KEY = "kdlens_run_choice"
CUSTOM_KEY = "kdlens_run_folder"
DEMO_NAME = "demo"


def choose_run(name: str) -> None:
    """Callback: make ``name`` the picked run (used by views that create runs)."""
    st.session_state[CHOICE_KEY] = name
    st.session_state[CUSTOM_KEY] = ""


def run_picker() -> state.RunKey | None:
    """Pick a run in the sidebar; stores the choice in the session and returns its key."""
    runs = {path.name: path for path in state.available_runs()}
    sidebar = st.sidebar
    sidebar.markdown("#### Run")
    chosen = None
    if runs:
        names = list(runs)
        if st.session_state.get(CHOICE_KEY) not in names:
            # First visit, or the chosen run was deleted: the demo run, else the newest.
            st.session_state[CHOICE_KEY] = DEMO_NAME if DEMO_NAME in names else names[0]
        name = sidebar.selectbox("Run", names, key=CHOICE_KEY, label_visibility="collapsed",
                                 help=f"Runs found in {safe.code(state.runs_dir())}.")
        chosen = runs.get(name)
    if access.review_mode():  # published runs only: no folder box, and a folder given another way is refused
        folder = str(st.session_state.get(CUSTOM_KEY) or "")
    else:
        with sidebar.expander("Open a run folder"):
            folder = st.text_input("Run folder path", key=CUSTOM_KEY, placeholder="path/to/runs/my-run")
    if folder and folder.strip():
        chosen = folder.strip()
    if chosen is None:
        state.set_current_run(None)
        return None
    try:
        key = state.run_key(chosen)
        run = state.load_run_meta(key.path, key.mtime)
    except (RunError, OSError) as err:
        sidebar.error(safe.md(err))
        state.set_current_run(None)
        return None
    state.set_current_run(key.path)
    teacher = run.manifest.get("teacher", {})
    sidebar.caption(
        f"**{safe.md(run.name)}** · {len(run.student_names)} students · classes: "
        f"{safe.md(', '.join(run.label_names))}  \n"
        f"teacher: {safe.code(teacher.get('source') or teacher.get('name', '?'))}  \n"
        f"created {safe.md(run.manifest.get('created_at', '?'))}"
    )
    return key


@st.fragment(run_every=2.0)
def _demo_progress() -> None:
    """The demo build's progress, polled while it runs; when it ends the whole page reruns and draws the result
    without polling (see dashboard/navigation.py: no polling fragment outlives its job)."""
    job = jobs.find_job(state.runs_dir(), DEMO_NAME)
    events = jobs.read_events(job) if job is not None else []
    status, message = jobs.job_status(job, events) if job is not None else ("", "")
    if status != "running":
        st.rerun(scope="app")
    st.progress(jobs.stage_fraction(events), text=f"Building the demo run: {safe.md(message)}…")
    st.caption(f"Log: {safe.code(job.log_file)} (the build goes on if you close this page).")


def _demo_status(runs_dir) -> None:
    """The demo build: live while it runs, else its result (drawn once, in a full run)."""
    job = jobs.find_job(runs_dir, DEMO_NAME)
    if job is None:
        return
    status, message = jobs.job_status(job)
    if status == "running":
        _demo_progress()
    elif status == "done":
        st.success("The demo run is ready.")
        st.button("Open it", key="kdlens_open_demo")  # a click reruns the app, which then finds the run
    else:
        st.error(f"Building the demo run failed: {safe.md(message)}")


def no_run_panel() -> None:
    """What to do when there is no run yet: the command, and a button that runs it."""
    runs_dir = state.runs_dir()
    if access.review_mode():
        st.info("No run is published here yet.")
        return
    st.info(
        f"No kd-lens run found in {safe.code(runs_dir)}. Build the demo run (MiniLM teacher fine-tuned on Rotten Tomatoes "
        "reviews, distilled into linear and MLP students) from a terminal:\n\n"
        "```\npython -m kdcore demo\n```\n\nor start it here; it runs in the background and takes a few minutes "
        "on a CPU. Set `KDLENS_RUNS_DIR` to use another runs folder, or open a run folder in the sidebar."
    )
    job = jobs.find_job(runs_dir, DEMO_NAME)
    running = job is not None and jobs.job_status(job)[0] == "running"
    partial = runs_dir / f"{DEMO_NAME}.partial"
    if partial.is_dir() and not running:
        changed = max((p.stat().st_mtime for p in partial.rglob("*")), default=partial.stat().st_mtime)
        st.warning(
            f"An unfinished demo build is in {safe.code(partial)} (last written "
            f"{time.strftime('%H:%M:%S', time.localtime(changed))}). If it is still running in a terminal, wait "
            "for it; otherwise the button resumes it."
        )
    if st.button("Build the demo run", type="primary", disabled=running, key="kdlens_build_demo"):
        try:
            jobs.start_job(runs_dir, "demo", DEMO_NAME, ["demo", "--name", DEMO_NAME])
        except (jobs.JobError, RunError, OSError) as err:
            st.error(safe.md(err))
    _demo_status(runs_dir)


def require_run() -> state.RunKey | None:
    """The session's run, or None after showing :func:`no_run_panel`."""
    key = state.current_key()
    if key is None:
        if state.available_runs() or st.session_state.get(CUSTOM_KEY):
            st.warning("The chosen run could not be opened (the sidebar says why); pick another one.")
        else:
            no_run_panel()
        return None
    return key


def draw_for_task(key: state.RunKey, drawers: dict) -> None:
    """Draw a page with the one of its ``drawers`` ({output field: draw(key)}) that handles the output field of
    the run's task (as LIT's modules ask whether a model's output spec holds a field they can show); a page
    with none says so."""
    task = task_of(state.meta(key))
    draw = drawers.get(task.output_field)
    if draw is None:
        st.info(f"This page has nothing to draw for a run of the {task.name} task; the Overview shows its numbers.")
        return
    draw(key)
