"""Fault injection: a build killed (SIGKILL) at each stage boundary and inside each kind of file write
resumes into the run an uninterrupted build makes (the same file hashes), and two `evaluate` processes
on one run leave it loadable with both results.

The killed builds and the evaluate commands run in forked children of this process (torch already
imported: a case costs one build, not an interpreter start); the point of the kill is set by
KDLENS_FAULT (kdcore/faults.py).
Fork is POSIX-only, hence the skip elsewhere.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from conftest import make_toy_corpus, tiny_spec

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the killed builds are forked children (POSIX)")

# Files holding measured times and speeds, which no two builds share; their other numbers are compared
# (timings.json holds nothing else: a build killed by SIGKILL cannot save the times it measured).
TIMED_FILES = ("metrics.json", "timings.json", "student_histories.json")
TIMED_KEYS = {"timings", "texts_per_second", "latency_ms", "speedup_vs_teacher", "seconds"}

# The build below writes, in this order: the build record (json 1), two fine-tuning checkpoints (dir 1, 2;
# json inside), the teacher folder (dir 3), the transfer set (jsonl 1), the logits (npy 1, 2), the student
# (dir 4; its model.safetensors inside), metrics and trust, the explanation records, the splits, the manifest.
FAULTS = ("stage:teacher", "stage:transfer_set", "stage:labels", "stage:students", "stage:evaluation",
          "stage:explanations", "stage:publish",
          "write:json:1", "write:dir:2", "write:dir:3", "write:jsonl:1", "write:npy:2", "write:safetensors:1",
          "write:manifest:1", "write:commit")


def _spec(model_dir):
    from kdcore.config import DistillConfig, RunSpec, StudentConfig, TeacherConfig

    students = (StudentConfig(kind="linear", name="linear", min_count=1),)
    spec = tiny_spec("faulty", model_dir, students).to_dict()
    spec.update(teacher=TeacherConfig(epochs=1, max_steps=4, min_steps=0, eval_every=2, batch_size=4, max_length=32,
                                      stride=8).to_dict(),
                distill=DistillConfig(augment_copies=1, train_label_baseline=False).to_dict(),
                explain_sample=2, explain_methods=["gradient_x_input"])
    return RunSpec.from_dict(spec)


def _build(model_dir, runs_dir):
    from kdcore.pipeline import build_run

    return build_run(_spec(model_dir), runs_dir=runs_dir, corpus=make_toy_corpus())


def _killed_build(fault: str, model_dir, runs_dir) -> None:
    os.environ["KDLENS_FAULT"] = fault
    try:
        _build(model_dir, runs_dir)
    finally:
        os._exit(0)  # reached only when the fault point never came


def _evaluate(argv: list[str]) -> None:
    from kdcore.cli import main

    code = 1
    try:
        code = main(argv)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def _untimed(value):
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in TIMED_KEYS}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return None if isinstance(value, float) and value != value else value  # NaN == NaN here


def _content(run_path: Path) -> dict:
    """Every file's hash from the manifest; the timed files' JSON without their times."""
    files = json.loads((run_path / "manifest.json").read_text())["files"]
    out = {rel: digest for rel, digest in files.items() if rel not in TIMED_FILES}
    for rel in TIMED_FILES:
        if rel in files:
            out[rel] = _untimed(json.loads((run_path / rel).read_text())) if rel != "timings.json" else "times"
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from conftest import make_tiny_model_dir

    return make_tiny_model_dir(tmp_path_factory.mktemp("fault_teacher"))


@pytest.fixture(scope="module")
def reference_run(model_dir, tmp_path_factory):
    return _build(model_dir, tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="module")
def reference(reference_run):
    return _content(reference_run)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_build_killed_there_resumes_into_the_same_run(fault, model_dir, reference, tmp_path):
    from kdcore.runs import list_runs, load_run

    child = multiprocessing.get_context("fork").Process(target=_killed_build, args=(fault, model_dir, tmp_path))
    child.start()
    child.join(timeout=300)
    assert child.exitcode == -signal.SIGKILL, f"the build was not killed at {fault} (exit code {child.exitcode})"
    assert list_runs(tmp_path) == [] and (tmp_path / "faulty.partial").is_dir()  # nothing half-made is visible

    path = _build(model_dir, tmp_path)
    load_run(path)  # every hash checks
    assert not (tmp_path / "faulty.partial").exists()
    assert not [p for p in path.rglob("*") if ".tmp" in p.name], "a temporary of the killed write was published"
    content = _content(path)
    assert sorted(content) == sorted(reference)
    assert {k: v for k, v in content.items() if content[k] != reference[k]} == {}


def test_two_evaluate_processes_keep_both_results(reference_run, tmp_path):
    """`evaluate --refresh` (every model measured again) and `evaluate --explain-sample` (explanation
    metrics added) at once on one run: both changes are in the run and its hashes check."""
    import shutil

    from kdcore.runs import load_run, update_run_metrics

    path = shutil.copytree(reference_run, tmp_path / "faulty")
    run = load_run(path)
    # Mark the teacher's speed so that the refresh shows; drop the build's explanation metrics.
    stale = {**run.metrics, "models": {**run.metrics["models"],
                                       "teacher": {**run.metrics["models"]["teacher"], "texts_per_second": -1.0}}}
    stale.pop("explanations")
    update_run_metrics(run, stale)
    command = ["evaluate", "--run", str(path), "--threads", "1"]
    context = multiprocessing.get_context("fork")  # two processes, as two terminals would start them
    jobs = [context.Process(target=_evaluate, args=(command + extra,))
            for extra in (["--refresh"], ["--explain-sample", "3", "--methods", "gradient_x_input"])]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=300)
    assert [job.exitcode for job in jobs] == [0, 0]
    again = load_run(path)  # the manifest matches every file
    assert again.metrics["models"]["teacher"]["texts_per_second"] > 0  # the refresh
    assert again.metrics["explanations"]["sample_size"] == 3  # the explanation metrics
    assert again.metrics["explanations"]["methods"] == ["gradient_x_input"]
    assert "explanation_metrics.jsonl" in again.manifest["files"]
