"""The token run: built through the one build_run, stored in the one run store, read back task-aware."""

from __future__ import annotations

import json

import pytest

from conftest import make_toy_token_corpus, tiny_token_spec
from kdcore.tasks.token.bio import is_valid_sequence
from kdcore.config import RunSpec, StudentConfig, default_students
from kdcore.runs import load_run
from kdcore.tasks.token.data import TokenDataset
from kdcore.tasks.token.metrics import decode, entity_scores


def test_token_run_is_stored_and_loads_task_aware(tiny_token_run_dir):
    run = load_run(tiny_token_run_dir)
    assert run.task == "token" and run.info.task == "token"
    assert run.twins() == {"linear": "linear-labels", "mlp": "mlp-labels", "crf": "crf-labels"}
    test = run.split("test")
    assert isinstance(test, TokenDataset) and test.has_labels
    teacher_tags = decode(run.teacher.predict_word_logits(test.sentences), run.label_names)
    for name in run.student_names:
        tags = run.student(name).tag(test.sentences)
        assert all(is_valid_sequence(t) for t in tags)
        stored = run.metrics["models"][name]["entity_agreement_f1"]
        assert stored == pytest.approx(entity_scores(teacher_tags, tags)["f1"])


def test_token_metrics_hold_per_type_tables_and_margins(tiny_token_run_dir):
    metrics = json.loads((tiny_token_run_dir / "metrics.json").read_text())
    assert metrics["task"] == "token" and metrics["decoding"] == "bio_viterbi"
    for name, entry in metrics["models"].items():
        types = [row["type"] for row in entry["per_type"]]
        assert "per" in types and "work" in types and "micro avg" in types, name
        assert 0 <= entry["fidelity"] <= 1
        low, high = entry["entity_f1_ci"]
        assert low <= entry["entity_f1"] <= high, name
        if name != "teacher":
            for key in ("fidelity", "entity_agreement_f1"):
                low, high = entry[f"{key}_ci"]
                assert low <= entry[key] <= high, (name, key)
    margin = metrics["margins"]["linear"]
    assert margin["twin"] == "linear-labels" and margin["low"] <= margin["difference"] <= margin["high"]
    summary = {row["model"]: row for row in metrics["explanations"]["summary"]}
    assert set(summary) == {"linear", "mlp", "crf", "linear-labels", "mlp-labels", "crf-labels"}
    assert -1 <= summary["linear"]["spearman_mean"] <= 1


def test_old_manifests_read_as_sequence_runs(tiny_run_dir):
    run = load_run(tiny_run_dir)
    assert run.task == "sequence" and run.info.task == "sequence"


def test_spec_checks_the_task():
    spec = RunSpec("ner", task="token")
    assert [s.kind for s in spec.students] == ["token_linear", "token_mlp", "token_crf"] and spec.data.corpus == "wnut16"
    assert RunSpec.from_json(spec.to_json()).to_dict() == spec.to_dict()
    with pytest.raises(ValueError, match="token_linear"):
        RunSpec("ner", task="token", students=[StudentConfig(kind="linear")])
    with pytest.raises(ValueError, match="not a token corpus"):
        RunSpec("ner", task="token", data={"corpus": "debates"})
    with pytest.raises(ValueError, match="task"):
        RunSpec("ner", task="entities")
    assert [s.kind for s in default_students(["linear"], task="token")] == ["token_linear"]


def test_unlabelled_sentences_refused_for_an_encoder(tmp_path, tiny_token_model_dir):
    from kdcore.data import DataError
    from kdcore.pipeline import build_run
    from kdcore.tasks.token.data import TokenCorpus

    corpus = make_toy_token_corpus()
    bare = TokenCorpus(*(TokenDataset(split.sentences, None, split.label_names) for split in
                         (corpus.train, corpus.dev, corpus.test)))
    spec = RunSpec.from_dict({**tiny_token_spec("bare", tiny_token_model_dir).to_dict(), "teacher_is_encoder": True})
    with pytest.raises(DataError, match="no tags"):
        build_run(spec, runs_dir=tmp_path, corpus=bare)
    assert not any(tmp_path.iterdir())


def test_alpha_mixes_gold_tags_into_the_distilled_students(tmp_path, tiny_token_model_dir):
    from kdcore.pipeline import build_run
    from kdcore.students import load_student

    spec = tiny_token_spec("alpha", tiny_token_model_dir, explain_sample=0)
    spec = RunSpec.from_dict({**spec.to_dict(), "distill": {**spec.distill.to_dict(), "alpha": 0.5,
                                                            "train_label_baseline": False},
                              "teacher": {**spec.teacher.to_dict(), "epochs": 0.0},
                              "students": [s.to_dict() for s in spec.students if s.kind != "token_crf"]})  # teacher only
    path = build_run(spec, runs_dir=tmp_path, corpus=make_toy_token_corpus(n_sentences=40))
    student = load_student(path / "students" / "linear")
    parts = student.history_[-1]["parts"]
    assert "hard_ce" in parts and "kd_kl" in parts
    assert load_run(path).twins() == {}
