"""The run store: atomic publication, resume after a kill, hash verification, no pickles, safe names."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_toy_corpus, tiny_spec
from kdcore.config import StudentConfig
from kdcore.pipeline import build_run
from kdcore.runs import RunError, RunWriter, list_runs, load_run, resolve_run_path, update_run_metrics

STUDENTS = (StudentConfig(kind="linear", name="linear", min_count=1, max_steps=5),)


def _build(name, runs_dir, model_dir, progress=None):
    return build_run(tiny_spec(name, model_dir, STUDENTS), runs_dir=runs_dir, corpus=make_toy_corpus(),
                     progress=progress)


def test_finished_run_loads_with_everything_in_it(tiny_run_dir):
    run = load_run(tiny_run_dir)
    assert run.label_names == ["neg", "pos"]
    assert set(run.student_names) == {"linear", "linear-labels", "mlp", "mlp-labels"}
    manifest = run.manifest
    assert manifest["teacher"]["fingerprint"] == run.teacher.fingerprint()
    assert set(manifest["datasets"]) == {"train", "dev", "test"}
    assert "torch" in manifest["package_versions"]
    assert all(len(digest) == 64 for digest in manifest["files"].values())
    assert not any(p.suffix in (".bin", ".pt", ".pkl") for p in tiny_run_dir.rglob("*"))
    models = run.metrics["models"]
    assert set(models) == {"teacher", "linear", "linear-labels", "mlp", "mlp-labels"}
    assert 0.0 <= models["linear"]["fidelity"] <= 1.0
    test = run.split("test")
    assert len(test) == 4 and test.has_labels
    np.testing.assert_allclose(run.teacher.predict_logits(test.texts), run.array("teacher_test_logits.npy"), atol=1e-5)


def test_killed_run_is_invisible_then_resumes(tmp_path, tiny_model_dir):
    class Killed(Exception):
        pass

    def kill_when_students_start(event):
        if event.get("stage") == "student_fit":
            raise Killed

    with pytest.raises(Killed):
        _build("resumable", tmp_path, tiny_model_dir, progress=kill_when_students_start)
    assert list_runs(tmp_path) == []
    assert (tmp_path / "resumable.partial" / "teacher_logits.npy").is_file()
    with pytest.raises(RunError, match="unfinished"):
        load_run(tmp_path / "resumable.partial")
    events = []
    path = _build("resumable", tmp_path, tiny_model_dir, progress=events.append)
    assert any(e.get("resumed") for e in events if e["stage"] == "teacher_fit")
    assert not any(e["stage"] == "teacher_predict" and e.get("total", 0) > 10 for e in events)
    assert list_runs(tmp_path) == [path]
    assert not (tmp_path / "resumable.partial").exists()
    load_run(path)


def test_tampered_weight_file_is_refused(tmp_path, tiny_model_dir):
    path = _build("tampered", tmp_path, tiny_model_dir)
    weights = path / "students" / "linear" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(RunError, match="does not match the hash"):
        load_run(path)


def test_pickle_in_run_is_refused(tmp_path, tiny_model_dir):
    path = _build("pickled", tmp_path, tiny_model_dir)
    (path / "teacher" / "pytorch_model.bin").write_bytes(b"\x80\x04N.")
    with pytest.raises(RunError, match="can run code"):
        load_run(path)


def test_missing_manifest_and_bad_json(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="not a finished kd-lens run"):
        load_run(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    with pytest.raises(RunError, match="not valid JSON"):
        load_run(tmp_path / "broken")


@pytest.mark.parametrize("name", ["../escape", "a/b", "/etc", "..", ".hidden", "", "x" * 101, "a\\b", "ok/../.."])
def test_run_names_cannot_escape_the_runs_folder(tmp_path, name):
    with pytest.raises(RunError):
        resolve_run_path(name, tmp_path)


def test_writer_refuses_existing_run_and_update_keeps_hashes(tmp_path, tiny_model_dir):
    path = _build("done", tmp_path, tiny_model_dir)
    with pytest.raises(RunError, match="already exists"):
        RunWriter("done", tmp_path)
    run = load_run(path)
    update_run_metrics(run, {**run.metrics, "note": "added"})
    again = load_run(path)
    assert again.metrics["note"] == "added"
    assert json.loads((path / "manifest.json").read_text())["files"]["metrics.json"] == again.manifest["files"]["metrics.json"]


def test_second_builder_of_the_same_run_is_refused(tmp_path):
    first = RunWriter("busy", tmp_path)
    with pytest.raises(RunError, match="being built by another process"):
        RunWriter("busy", tmp_path)
    first.release()
    RunWriter("busy", tmp_path).abort()
    # The lock file stays (removing a lock file another process may be waiting on is a race); it is free.
    RunWriter("busy", tmp_path).abort()
    assert not (tmp_path / "busy.partial").exists()


def test_run_files_are_readable_by_others(tiny_run_dir):
    assert (tiny_run_dir / "manifest.json").stat().st_mode & 0o044 == 0o044


def test_split_with_unicode_line_separators_round_trips(tmp_path, tiny_model_dir):
    from types import SimpleNamespace

    from kdcore.data import TextDataset

    corpus = make_toy_corpus()
    odd = "good film\u2028with a line separator\x85 and more"
    test = TextDataset(list(corpus.test.texts) + [odd], np.append(corpus.test.labels, 1), ["neg", "pos"])
    corpus = SimpleNamespace(train=corpus.train, dev=corpus.dev, test=test, unlabelled=corpus.unlabelled)
    path = build_run(tiny_spec("odd", tiny_model_dir, STUDENTS), runs_dir=tmp_path, corpus=corpus)
    assert load_run(path).split("test").texts[-1] == odd


def test_attr_match_run_computes_and_stores_teacher_attributions(tmp_path, tiny_model_dir):
    path = build_run(tiny_spec("attr", tiny_model_dir, STUDENTS, attr_match=1.0), runs_dir=tmp_path,
                     corpus=make_toy_corpus())
    run = load_run(path)
    assert "teacher_attributions.json" in run.manifest["files"]
    stored = json.loads((path / "teacher_attributions.json").read_text())
    from kdcore.words import split_words

    transfer = [json.loads(line)["text"] for line in (path / "data" / "transfer.jsonl").read_text().split("\n") if line]
    assert len(stored[0]) == len(split_words(transfer[0]))
    history = run.student("linear").history_
    assert history and "attr_match" in json.dumps(history)


# ------------------------------------------------------------------------------ names, resumes, refusals
@pytest.mark.parametrize("name", ["demo\n", "x.partial", "x.PARTIAL", "x.lock", "tab\there", "bell\x07"])
def test_names_the_store_uses_or_that_hold_control_characters_are_refused(tmp_path, name):
    from kdcore.config import RunSpec

    with pytest.raises(RunError, match="not allowed"):
        resolve_run_path(name, tmp_path)
    with pytest.raises(ValueError, match="not allowed"):
        RunSpec(name)
    with pytest.raises(RunError):
        RunWriter(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["../up", "a/b", "x.partial", "new\nline", " "])
def test_student_names_are_checked_too(name):
    with pytest.raises(ValueError, match="Student name"):
        StudentConfig(kind="linear", name=name)


def test_a_resume_with_another_spec_or_other_data_is_refused_naming_the_differences(tmp_path, tiny_model_dir):
    from kdcore.config import RunSpec

    class Killed(Exception):
        pass

    def kill_at_students(event):
        if event.get("stage") == "student_fit":
            raise Killed

    spec = tiny_spec("resumed", tiny_model_dir, STUDENTS, temperature=0.5)
    with pytest.raises(Killed):
        build_run(spec, runs_dir=tmp_path, corpus=make_toy_corpus(), progress=kill_at_students)
    other = RunSpec.from_dict({**spec.to_dict(), "distill": {**spec.distill.to_dict(), "temperature": 2.0}})
    corpus = make_toy_corpus()
    corpus.train = corpus.train.subset(range(1, len(corpus.train)))  # other data
    with pytest.raises(RunError) as err:
        build_run(other, runs_dir=tmp_path, corpus=corpus)
    message = str(err.value)
    assert "distill.temperature: 0.5 -> 2.0" in message and "data train:" in message
    assert "delete" in message and "resumed.partial" in message
    assert (tmp_path / "resumed.partial" / "teacher_logits.npy").is_file()  # nothing of the first build is lost
    # The same spec with only its speed settings changed resumes.
    faster = RunSpec.from_dict({**spec.to_dict(), "threads": 2})
    path = build_run(faster, runs_dir=tmp_path, corpus=make_toy_corpus())
    assert load_run(path).manifest["distill"]["temperature"] == 0.5


def test_a_build_refused_at_its_teacher_leaves_no_folder(tmp_path, tiny_model_dir):
    from kdcore.labels import LabelMismatch

    corpus = make_toy_corpus()
    for split in ("train", "dev", "test"):  # classes the teacher (neg, pos) does not have
        data = getattr(corpus, split)
        setattr(corpus, split, data.__class__(data.texts, data.labels, ["bad", "good"]))
    with pytest.raises(LabelMismatch):
        build_run(tiny_spec("refused", tiny_model_dir, STUDENTS), runs_dir=tmp_path, corpus=corpus)
    assert not (tmp_path / "refused.partial").exists() and list_runs(tmp_path) == []


def test_update_keeps_a_change_another_process_made_meanwhile(tiny_run_dir, tmp_path):
    """Two holders of one run (two evaluate processes): each change is made on the manifest on disk, not on the
    copy read at the start, so neither loses the other's file."""
    import shutil

    from kdcore.runs import update_run_file

    path = shutil.copytree(tiny_run_dir, tmp_path / "copy")
    first, second = load_run(path), load_run(path)
    update_run_file(first, "extra_a.json", {"a": 1})
    update_run_metrics(second, {**second.metrics, "note": "b"})
    again = load_run(path)  # every hash checks
    assert {"extra_a.json", "metrics.json"} <= set(again.manifest["files"]) and again.metrics["note"] == "b"
    # A change given as a function of the metrics on disk keeps another holder's metrics too.
    update_run_metrics(first, lambda current: {**current, "other": "a"})
    assert load_run(path).metrics["note"] == "b" and load_run(path).metrics["other"] == "a"
