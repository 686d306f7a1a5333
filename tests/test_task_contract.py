"""One contract over every registered task (as test_student_contract.py over every student kind): a tiny
run built through the one build_run is loaded, measured again, explained and reported the same way, and
every dashboard page draws it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from kdcore.pipeline import refresh_metrics
from kdcore.runs import load_run
from kdcore.tasks import TASKS, VIEWS, Task, get_task, task_of
from test_dashboard import ROOT, TIMEOUT, _view_script, no_exceptions

# The session fixture that builds each task's tiny run (tests/conftest.py, through kdcore.pipeline.build_run).
# A task registered without one fails here: add its tiny run to conftest.py.
TINY_RUNS = {"sequence": "tiny_run_dir", "token": "tiny_token_run_dir"}


def test_every_registered_task_has_a_tiny_run_and_fills_the_interface():
    assert set(TINY_RUNS) == set(TASKS)
    for name in TASKS:
        task = get_task(name)
        assert isinstance(task, Task) and task.name == name
        overridden = {attr for attr in vars(Task) if callable(getattr(Task, attr)) and not attr.startswith("__")
                      and getattr(type(task), attr) is not getattr(Task, attr)}
        abstract = {"default_students", "student_kinds", "check_spec", "corpora", "load_corpus", "check",
                    "preflight", "split_rows", "read_split", "teacher_class", "transfer_set", "save_transfer",
                    "transfer_entry", "teacher_outputs", "fit_student", "evaluate", "after_evaluation",
                    "explanation_metrics", "metrics_table", "write_report", "demo_spec", "spec_from_args",
                    "teacher_config"}
        assert abstract <= overridden, f"{name} leaves {sorted(abstract - overridden)} to the base"
        assert set(task.views) <= set(VIEWS)


@pytest.fixture(params=sorted(TASKS))
def task_run(request, tmp_path):
    """(task, a copy of its tiny run that the test may change, alone in its runs folder)."""
    built = Path(request.getfixturevalue(TINY_RUNS[request.param]))
    copy = tmp_path / "runs" / built.name
    shutil.copytree(built, copy)
    return get_task(request.param), copy


def test_the_run_is_the_tasks_and_reads_back(task_run):
    task, path = task_run
    run = load_run(path)
    assert run.task == task.name and task_of(run) is task and task_of(run.metrics) is task
    assert isinstance(run.teacher, task.teacher_class())
    test = run.split("test")
    again = task.read_split(task.split_rows(test), run.label_names, "test")
    assert again.content_hash() == test.content_hash() == run.manifest["datasets"]["test"]["hash"]
    examples = task.split_rows(test)[:3]
    inputs = [row.get("text", row.get("tokens")) for row in examples]
    logits = run.teacher.predict_logits(inputs)  # one contract: per text, or per word of each sentence
    assert len(logits) == len(inputs)
    for row, out in zip(examples, logits):
        width = np.asarray(out).shape[-1]
        assert width == len(run.label_names)
        if "tokens" in row:
            assert np.asarray(out).shape == (len(row["tokens"]), len(run.label_names))


def test_refresh_measures_the_same_numbers_again(task_run):
    task, path = task_run
    run = load_run(path)
    stored = json.loads((path / "metrics.json").read_text())
    fresh = refresh_metrics(run)
    assert set(fresh["models"]) == {"teacher", *run.student_names}
    for name, entry in stored["models"].items():
        assert fresh["models"][name]["fidelity"] == pytest.approx(entry["fidelity"], abs=1e-9), name
    assert load_run(path).metrics == fresh  # written, with its hash in the manifest
    table = task.metrics_table(fresh)
    assert list(table["model"]) == list(fresh["models"])


def test_explanations_and_report(task_run, tmp_path):
    task, path = task_run
    run = load_run(path)
    records, block = task.explanation_metrics(run.teacher, run.students, run.split("test"), 2,
                                              methods=("gradient_x_input",))
    explained = {r["model"] for r in records}
    assert set(run.student_names) <= explained <= {"teacher", *run.student_names}
    assert set(run.student_names) <= {row["model"] for row in block["summary"]}
    html_path, json_path = task.write_report(run, tmp_path / "report.html")
    page = html_path.read_text(encoding="utf-8")
    assert run.name in page and "<script" not in page
    assert json.loads(json_path.read_text(encoding="utf-8"))["run"]["name"] == run.name


def test_every_page_draws_the_run(task_run, monkeypatch):
    task, path = task_run
    monkeypatch.setenv("KDLENS_RUNS_DIR", str(path.parent))
    monkeypatch.setenv("KDLENS_THREADS", "1")
    for page in task.views:
        at = AppTest.from_function(_view_script, args=(page, str(ROOT)), default_timeout=TIMEOUT).run()
        no_exceptions(at)
        assert at.title or at.header or at.subheader, page


def test_the_trust_curve_is_stored_and_read_again_from_the_stored_logits(task_run):
    from kdcore.trust import load_trust, recompute_trust

    task, path = task_run
    run = load_run(path)
    assert task.has_trust()
    record = load_trust(run)
    assert set(record.students) == set(run.student_names)
    assert record.test_size == len(run.split("test")) and record.dev_size == len(run.split("dev"))
    again = recompute_trust(run)  # from the teacher's stored test and dev logits, in the task's shape
    for name, entry in record.students.items():
        assert again.students[name].score == entry.score
        assert again.students[name].coverage == pytest.approx(entry.coverage)
        assert entry.unit in entry.headline()
