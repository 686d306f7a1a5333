"""The run pipeline: named resumable stages over a RunSpec, roles and twins in the manifest,
RunSpec validation and JSON, one spec from the CLI and the dashboard, old manifests."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from conftest import make_toy_corpus, tiny_spec
from kdcore.config import DataSource, DistillConfig, RunSpec, StudentConfig, default_students
from kdcore.pipeline import PIPELINE_STAGES, build_run
from kdcore.plan import STAGES_FILE
from kdcore.records import STAGES, MetricsRow, ProgressEvent, RunManifest
from kdcore.runs import list_runs, load_run

STUDENTS = (StudentConfig(kind="linear", name="lin", min_count=1, max_steps=5),)


class Killed(Exception):
    pass


def _kill_at(*stages):
    def progress(event):
        if event.get("stage") in stages:
            raise Killed

    return progress


# ------------------------------------------------------------------------------ the build
def test_manifest_records_roles_and_twins(tiny_run_dir):
    info = load_run(tiny_run_dir).info
    assert {n: (e.kind, e.role, e.twin_of) for n, e in info.students.items()} == {
        "linear": ("linear", "distilled", None), "linear-labels": ("linear", "label-trained", "linear"),
        "mlp": ("mlp", "distilled", None), "mlp-labels": ("mlp", "label-trained", "mlp")}
    assert info.twins() == {"linear": "linear-labels", "mlp": "mlp-labels"}
    assert RunSpec.from_dict(info.spec).name == "tiny"
    raw = json.loads((tiny_run_dir / "manifest.json").read_text())
    assert raw["students"]["mlp-labels"]["twin_of"] == "mlp" and raw["students"]["mlp"]["role"] == "distilled"
    # metrics.json words the roles as before, from the same manifest roles
    models = load_run(tiny_run_dir).metrics["models"]
    assert models["mlp-labels"]["role"] == "label-trained student" and models["mlp"]["role"] == "distilled student"
    row = MetricsRow.from_dict("mlp", models["mlp"])
    assert row.kind == "mlp" and 0 <= row.fidelity <= 1 and row.to_dict() == models["mlp"]
    # the stage record is a build-time file: the run store drops it with the checkpoints
    assert not (tiny_run_dir / STAGES_FILE).exists() and "checkpoints" not in json.dumps(raw["files"])


def test_twins_without_labels_are_not_planned(tmp_path, tiny_model_dir):
    from types import SimpleNamespace

    corpus = make_toy_corpus()
    unlabelled = SimpleNamespace(**{k: getattr(corpus, k) for k in ("dev", "test", "unlabelled")},
                                 train=corpus.train.__class__(list(corpus.train.texts), None, ["neg", "pos"]))
    path = build_run(tiny_spec("nolabels", tiny_model_dir, STUDENTS), runs_dir=tmp_path, corpus=unlabelled)
    assert {n: e.role for n, e in load_run(path).info.students.items()} == {"lin": "distilled"}


def test_resume_skips_finished_stages(tmp_path, tiny_model_dir):
    spec = tiny_spec("resume", tiny_model_dir, STUDENTS)
    with pytest.raises(Killed):
        build_run(spec, runs_dir=tmp_path, corpus=make_toy_corpus(), progress=_kill_at("evaluate"))
    partial = tmp_path / "resume.partial"
    assert list(json.loads((partial / STAGES_FILE).read_text())) == ["teacher", "transfer_set", "labels", "students"]
    student_file = partial / "students" / "lin" / "model.safetensors"
    trained_at = student_file.stat().st_mtime_ns

    events = []
    path = build_run(spec, runs_dir=tmp_path, corpus=make_toy_corpus(), progress=events.append)
    stages = [e["stage"] for e in events if "phase" not in e]  # the work events, not a stage's start and end
    assert "student_fit" not in stages and "teacher_predict" not in stages  # finished stages were not redone
    assert all(e.get("resumed") for e in events if e.get("phase") and e["stage"] in ("student_fit", "teacher_predict"))
    assert any(e.get("resumed") for e in events if e["stage"] == "teacher_fit")
    assert "evaluate" in stages and stages[-1] == "done"
    assert (path / "students" / "lin" / "model.safetensors").stat().st_mtime_ns == trained_at
    assert list_runs(tmp_path) == [path] and not partial.exists()


def test_resume_after_evaluation_skips_it(tmp_path, tiny_model_dir):
    spec = RunSpec.from_dict({**tiny_spec("late", tiny_model_dir, STUDENTS).to_dict(), "explain_sample": 2,
                              "explain_methods": ["gradient_x_input"]})
    with pytest.raises(Killed):
        build_run(spec, runs_dir=tmp_path, corpus=make_toy_corpus(), progress=_kill_at("explain", "explain_eval"))
    events = []
    path = build_run(spec, runs_dir=tmp_path, corpus=make_toy_corpus(), progress=events.append)
    assert not any(e["stage"] in ("evaluate", "student_fit", "teacher_predict") for e in events if "phase" not in e)
    metrics = load_run(path).metrics
    assert metrics["explanations"]["methods"] == ["gradient_x_input"] and "evaluate_s" in metrics["timings"]


def test_pipeline_stages_are_short_named_functions():
    from kdcore.pipeline import stages

    assert PIPELINE_STAGES == ("teacher", "transfer_set", "labels", "students", "evaluation", "explanations")
    assert [f.__name__ for f in stages.PIPELINE] == [f"stage_{name}" for name in PIPELINE_STAGES]
    tree = ast.parse(Path(stages.__file__).read_text(encoding="utf-8"))
    long = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.end_lineno - n.lineno > 60]
    assert long == []


def test_build_run_wants_a_spec(tmp_path):
    with pytest.raises(TypeError, match="RunSpec"):
        build_run("name", runs_dir=tmp_path)


# ------------------------------------------------------------------------------ RunSpec
@pytest.mark.parametrize("changes, message", [
    ({"name": "../escape"}, "not allowed"),
    ({"name": ""}, "not allowed"),
    ({"teacher_source": " "}, "teacher_source is empty"),
    ({"students": []}, "choose at least one student"),
    ({"students": StudentConfig()}, "list of StudentConfig"),
    ({"students": [StudentConfig(name="a"), StudentConfig(name="a")]}, "rename a student"),
    ({"students": [StudentConfig(name="a"), StudentConfig(name="a-labels")]}, "rename a student"),
    ({"students": [{"kind": "forest"}]}, "kind='forest' is not valid"),
    ({"teacher": {"nope": 1}}, "TeacherConfig has no field"),
    ({"distill": 3}, "distill must be a DistillConfig"),
    ({"explain_sample": -1}, "explain_sample must be >= 0"),
    ({"explain_sample": 5, "explain_methods": []}, "at least one method"),
    ({"extra_texts": "one text"}, "list of texts"),
    ({"threads": 0}, "threads must be > 0"),
    ({"data": {"text_column": "review"}}, "set the data path too"),
])
def test_run_spec_rejects_nonsense_with_the_fix(changes, message):
    with pytest.raises(ValueError, match=message):
        RunSpec(**{"name": "ok", **changes})


def test_run_spec_round_trips_through_json():
    spec = RunSpec("r", teacher_source="/t", teacher_is_encoder=False, students=list(STUDENTS),
                   distill=DistillConfig(loss="kd_mse", attr_match=0.5), data=DataSource("/d.csv", "text", "none", 3),
                   explain_sample=4, extra_texts=["more text"], cache_dir=None, device="cpu", threads=2)
    again = RunSpec.from_json(spec.to_json())
    assert again == spec and again.to_dict() == spec.to_dict()
    assert json.loads(spec.to_json())["students"][0]["name"] == "lin"
    assert spec.data.reader_options() == {"text_column": "text", "label_column": False}
    with pytest.raises(ValueError, match="has no field"):
        RunSpec.from_dict({"name": "r", "epochs": 3})
    with pytest.raises(ValueError, match="not valid JSON"):
        RunSpec.from_json("{")


def test_default_students_set_the_training_length():
    assert default_students(["mlp"])[0].max_steps == StudentConfig().max_steps
    assert [s.max_steps for s in default_students(["linear", "mlp"], 7)] == [7, 7]
    with pytest.raises(ValueError, match="Unknown student kind"):
        default_students(["forest"])


def test_cli_and_dashboard_build_equal_specs(tmp_path):
    from dashboard.views.distill import build_spec
    from kdcore.cli import build_parser, spec_from_args

    args = build_parser().parse_args([
        "distill", "--name", "same", "--teacher", "/models/t", "--encoder", "--data", "/d.csv", "--text-column",
        "review", "--students", "linear,mlp", "--loss", "kd_mse", "--temperature", "3", "--alpha", "0.25",
        "--augment-copies", "1", "--student-steps", "40", "--teacher-epochs", "1.5"])
    from_cli = spec_from_args(args)
    from_view = build_spec("same", "/models/t", True, Path("/d.csv"), "review", None, ["linear", "mlp"], "kd_mse",
                           3.0, 0.25, 1, 40, 1.5)
    assert from_cli == from_view
    # and the spec file the view hands to its job reads back as the same spec through the CLI
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(from_view.to_json(), encoding="utf-8")
    assert spec_from_args(build_parser().parse_args(["distill", "--spec", str(spec_file)])) == from_view


def test_cli_distill_needs_a_name_and_speaks_in_flags(tmp_path, capsys):
    from kdcore.cli import main

    assert main(["distill", "--runs-dir", str(tmp_path)]) == 2
    assert "--name" in capsys.readouterr().err
    data = tmp_path / "d.csv"
    data.write_text("id,score\n1,2\n3,4\n", encoding="utf-8")
    assert main(["distill", "--name", "x", "--data", str(data), "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--text-column" in err and "text_column=" not in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


# ------------------------------------------------------------------------------ records
def test_old_manifest_gets_roles_derived_once():
    old = {"format_version": 1, "run_id": "old", "label_names": ["neg", "pos"], "teacher": {"name": "teacher"},
           "students": {"linear": {"kind": "linear", "distilled": True, "config": {"kind": "linear"}},
                        "linear-labels": {"kind": "linear", "distilled": False, "config": {"kind": "linear"}},
                        "solo-labels": {"kind": "mlp", "distilled": True, "config": {"kind": "mlp"}}},
           "files": {}, "something_new": 1}
    info = RunManifest.from_dict(old)
    assert (info.students["linear-labels"].role, info.students["linear-labels"].twin_of) == ("label-trained", "linear")
    # a "-labels" name whose stem is no student is just a name
    assert (info.students["solo-labels"].role, info.students["solo-labels"].twin_of) == ("distilled", None)
    assert info.twins() == {"linear": "linear-labels"} and info.family("linear-labels") == "linear"
    again = RunManifest.from_dict(info.to_dict())
    assert again.students == info.students and again.to_dict()["something_new"] == 1


def test_old_run_on_disk_loads_with_roles(tmp_path, tiny_run_dir):
    import shutil

    from kdcore.utils import atomic_write_json

    old = tmp_path / "old"
    shutil.copytree(tiny_run_dir, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest.pop("spec")
    manifest["students"] = {n: {"kind": e["kind"], "distilled": not n.endswith("-labels"), "config": e["config"]}
                            for n, e in manifest["students"].items()}
    atomic_write_json(old / "manifest.json", manifest)
    run = load_run(old)
    assert run.twins() == {"linear": "linear-labels", "mlp": "mlp-labels"}
    assert run.info.spec is None and run.info.role("teacher") == "teacher"


def test_progress_events_name_known_stages():
    event = ProgressEvent.from_dict({"stage": "teacher_fit", "step": 5, "total": 10, "lr": 0.1})
    assert event.extra == {"lr": 0.1} and event.to_dict() == {"stage": "teacher_fit", "step": 5, "total": 10, "lr": 0.1}
    assert 0 < event.fraction < 0.55 and event.label == "fine-tuning the teacher"
    # every stage the engine emits is in the one STAGES list
    root = Path(__file__).resolve().parents[1] / "kdcore"
    emitted = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "emit":
                emitted |= {k.value.value for k in node.keywords
                            if k.arg == "stage" and isinstance(k.value, ast.Constant)}
    assert emitted and emitted <= set(STAGES), emitted - set(STAGES)


# ----------------------------------------------------------------------------- your own teacher and data
def test_teacher_saved_in_another_class_order_gives_the_right_metrics(tmp_path):
    """A head saved as [pos, neg] against data labelled [neg, pos]: the data is re-indexed to the
    teacher, so the run's numbers equal those computed by class name."""
    import numpy as np

    from conftest import make_tiny_model_dir
    from kdcore.runs import load_run
    from kdcore.teacher import Teacher

    folder = make_tiny_model_dir(tmp_path / "reversed", label_names=("pos", "neg"), seed=5)
    corpus = make_toy_corpus()
    path = build_run(tiny_spec("reordered", folder, STUDENTS), runs_dir=tmp_path / "runs", corpus=corpus)
    run = load_run(path)
    assert run.label_names == ["pos", "neg"]
    teacher = Teacher.from_pretrained(folder, device="cpu")
    predicted = [teacher.label_names[i] for i in teacher.predict_logits(corpus.test.texts).argmax(axis=1)]
    gold = [corpus.test.label_names[i] for i in corpus.test.labels]
    expected = float(np.mean([p == g for p, g in zip(predicted, gold)]))
    assert run.metrics["models"]["teacher"]["accuracy"] == pytest.approx(expected)
    assert run.split("test").label_names == ["pos", "neg"]


def test_a_mismatched_teacher_is_refused_naming_both_label_sets(tmp_path):
    from conftest import make_tiny_model_dir
    from kdcore.labels import LabelMismatch

    folder = make_tiny_model_dir(tmp_path / "fresh", label_names=("rotten", "fresh"), seed=6)
    with pytest.raises(LabelMismatch, match=r"\[rotten, fresh\].*\[neg, pos\]"):
        build_run(tiny_spec("foreign", folder, STUDENTS), runs_dir=tmp_path / "runs", corpus=make_toy_corpus())
    assert not list((tmp_path / "runs").glob("foreign"))  # nothing published


def test_data_without_a_teacher_never_distills_an_untrained_head(tmp_path):
    from kdcore.cli import build_parser, spec_from_args

    spec = spec_from_args(build_parser().parse_args(["distill", "--name", "mine", "--data", "reviews.csv"]))
    assert spec.teacher_is_encoder and spec.teacher.epochs > 0  # the embedded encoder, fine-tuned
    with pytest.raises(ValueError, match="needs fine-tuning"):
        RunSpec("r", teacher_is_encoder=True, teacher={"epochs": 0})
    unlabelled = make_toy_corpus()
    unlabelled.train = unlabelled.train.subset(range(len(unlabelled.train)))
    unlabelled.train.labels = None
    from kdcore.data import DataError

    with pytest.raises(DataError, match="no labels"):
        build_run(RunSpec("enc", students=STUDENTS), runs_dir=tmp_path / "runs", corpus=unlabelled)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_a_teacher_no_better_than_the_majority_class_is_flagged(tmp_path, tiny_model_dir):
    from kdcore.runs import load_run

    corpus = make_toy_corpus()
    # Every test text is 'pos': the majority answer is right on all of them, the random teacher is not.
    keep = [i for i, label in enumerate(corpus.test.labels) if label == 1]
    corpus.test = corpus.test.subset(keep)
    run = load_run(build_run(tiny_spec("weak", tiny_model_dir, STUDENTS), runs_dir=tmp_path, corpus=corpus))
    # The majority answer scores 1.0 here, which no teacher beats: the check must speak.
    assert any("test accuracy" in f["message"] and "no better than always answering" in f["message"]
               for f in run.metrics["findings"])


def test_the_three_class_example_is_one_choice_in_the_cli_and_the_view():
    from dashboard.views.distill import build_spec
    from kdcore.cli import build_parser, spec_from_args
    from kdcore.tasks.sequence.corpus import load_corpus

    from_cli = spec_from_args(build_parser().parse_args(["distill", "--name", "deb", "--corpus", "debates"]))
    from_view = build_spec("deb", "embedded-minilm", True, None, None, None, ["linear", "mlp"], "kd_kl", 0.5, 0.0,
                           2, StudentConfig().max_steps, 1.5, corpus="debates")
    assert from_cli.data.corpus == from_view.data.corpus == "debates"
    assert load_corpus(from_cli.data).label_names == ["Democratic", "Moderator", "Republican"]
    with pytest.raises(ValueError, match="rotten_tomatoes, debates"):
        DataSource(corpus="imdb")


def test_unlabelled_upload_builds_a_run_that_says_no_gold_labels(tmp_path, tiny_model_dir):
    """A CSV with no label column and a trained teacher: pure distillation. Accuracy says "no gold
    labels"; fidelity (with its interval) is still measured, in metrics.json, the card and the report."""
    from conftest import TOY_NEG, TOY_POS
    from kdcore.metrics import NO_GOLD_LABELS, metrics_table
    from kdcore.report import build_report, render_html

    data = tmp_path / "mine.csv"
    data.write_text("text\n" + "\n".join(f'"{t}"' for t in (TOY_POS + TOY_NEG) * 3), encoding="utf-8")
    spec = RunSpec.from_dict({**tiny_spec("mine", tiny_model_dir, STUDENTS).to_dict(),
                              "data": DataSource(path=str(data), label_column="none", seed=0).to_dict()})
    run = load_run(build_run(spec, runs_dir=tmp_path / "runs"))
    metrics = run.metrics
    assert metrics["gold_labels"] is False and "lin-labels" not in metrics["models"]
    teacher, student = metrics["models"]["teacher"], metrics["models"]["lin"]
    assert "accuracy" not in teacher and "accuracy" not in student
    low, high = student["fidelity_ci"]
    assert low <= student["fidelity"] <= high and high - low > 0.05  # a small test split: a wide interval
    card = metrics_table(metrics)
    assert set(card["accuracy"]) == {NO_GOLD_LABELS}
    html = render_html(build_report(run, examples=[]))
    assert NO_GOLD_LABELS in html and "no gold labels" in html.lower()


def test_twin_margin_has_a_paired_interval(tiny_run_dir):
    models = load_run(tiny_run_dir).metrics["models"]
    assert load_run(tiny_run_dir).metrics["gold_labels"] is True
    for student, twin in (("linear", "linear-labels"), ("mlp", "mlp-labels")):
        margin = models[student]["fidelity_over_twin"]
        assert margin["twin"] == twin
        assert margin["difference"] == pytest.approx(models[student]["fidelity"] - models[twin]["fidelity"])
        assert margin["ci"][0] <= margin["difference"] <= margin["ci"][1]
        for key in ("accuracy_ci", "fidelity_ci", "macro_f1_ci"):
            low, high = models[student][key]
            assert 0 <= low <= models[student][key[:-3]] <= high <= 1
    assert "fidelity_over_twin" not in models["linear-labels"]


def test_a_teacher_clearly_beaten_by_a_label_trained_student_is_flagged():
    from kdcore.tasks.sequence.evaluate import teacher_beaten_findings as _teacher_beaten_findings

    models = {"teacher": {"role": "teacher", "accuracy": 0.55, "accuracy_ci": [0.473, 0.626]},
              "linear-labels": {"role": "label-trained student", "accuracy": 0.72, "accuracy_ci": [0.647, 0.786]},
              "linear": {"role": "distilled student", "accuracy": 0.80, "accuracy_ci": [0.73, 0.86]}}
    found = _teacher_beaten_findings(models)
    assert len(found) == 1 and "linear-labels" in found[0]["message"] and "undertrained" in found[0]["message"]
    models["linear-labels"]["accuracy_ci"] = [0.60, 0.79]  # overlapping intervals: no claim
    assert _teacher_beaten_findings(models) == []


def test_every_sequence_run_trains_the_augmented_student_unless_told_otherwise(tmp_path):
    """distill --data, the Distill view and default_students() all default to the task's every kind: the
    augmented student for texts; the CRF beside the linear and MLP students for a token run."""
    from dashboard.views.distill import build_spec
    from kdcore.cli import build_parser, spec_from_args
    from kdcore.tasks import get_task

    data = tmp_path / "d.csv"
    data.write_text("text,label\na good film,pos\n", encoding="utf-8")
    from_cli = spec_from_args(build_parser().parse_args(["distill", "--name", "own", "--data", str(data)]))
    assert [s.kind for s in from_cli.students] == ["linear", "mlp", "aug_linear"]
    assert from_cli.students[2].max_features == 150_000  # the demo's augmented student, not a bare config
    assert [s.kind for s in default_students()] == ["linear", "mlp", "aug_linear"]
    kinds = get_task("sequence").student_choices()
    from_view = build_spec("own", "embedded-minilm", True, data, None, None, kinds, "kd_kl", 0.5, 0.0, 2,
                           StudentConfig().max_steps, 1.5)
    assert [s.kind for s in from_view.students] == ["linear", "mlp", "aug_linear"]
    named = spec_from_args(build_parser().parse_args(["distill", "--name", "own", "--students", "linear"]))
    assert [s.kind for s in named.students] == ["linear"]
    conll = tmp_path / "tags.conll"
    conll.write_text("the\tO\nfilm\tB-work\n", encoding="utf-8")
    token = spec_from_args(build_parser().parse_args(["distill", "--name", "tok", "--data", str(conll)]))
    assert [s.kind for s in token.students] == ["token_linear", "token_mlp", "token_crf"]
    assert [s.kind for s in default_students(task="token")] == ["token_linear", "token_mlp", "token_crf"]
