"""python -m kdcore distill on a CoNLL file with a token teacher: the task read from the file and the head."""

from __future__ import annotations

import json

from conftest import make_toy_token_corpus
from kdcore.cli import build_parser, main, spec_from_args


def _write_conll(path, dataset):
    lines = []
    for i, words in enumerate(dataset.sentences):
        lines += [f"{w}\t{t}" for w, t in zip(words, dataset.tag_names(i))] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_distill_reads_the_task_from_the_file_and_builds_a_token_run(tmp_path, tiny_token_model_dir, capsys):
    corpus = make_toy_token_corpus(n_sentences=60)
    data = _write_conll(tmp_path / "toy.conll", corpus.train)
    argv = ["distill", "--data", str(data), "--teacher", str(tiny_token_model_dir), "--name", "toy-ner",
            "--runs-dir", str(tmp_path / "runs"), "--threads", "1", "--student-steps", "50", "--augment-copies", "1"]
    spec = spec_from_args(build_parser().parse_args(argv))
    assert spec.task == "token" and not spec.teacher_is_encoder and spec.teacher.epochs == 0
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "entity_agreement_f1" in out and "linear - linear-labels: entity agreement F1" in out
    manifest = json.loads((tmp_path / "runs" / "toy-ner" / "manifest.json").read_text())
    assert manifest["task"] == "token"


def test_a_sequence_file_stays_a_sequence_run(tmp_path):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\ngood film,pos\nbad film,neg\n", encoding="utf-8")
    spec = spec_from_args(build_parser().parse_args(["distill", "--data", str(data), "--name", "r"]))
    assert spec.task == "sequence" and spec.teacher.max_steps == 450


def test_demo_task_ner_spec():
    from kdcore.tasks.token.specs import token_demo_spec

    spec = token_demo_spec("demo-ner")
    assert spec.task == "token" and spec.data.corpus == "wnut16" and spec.teacher_is_encoder


def test_evaluate_and_explain_on_a_token_run(tiny_token_run_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_token_run_dir, copy)
    assert main(["explain", "--run", str(copy), "the great film was fun", "--threads", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["word", "teacher"] and out[3].split()[0] == "film"
    assert main(["evaluate", "--run", str(copy), "--explain-sample", "2", "--threads", "1"]) == 0
    metrics = json.loads((copy / "metrics.json").read_text())
    assert metrics["explanations"]["sample_size"] == 2
    before = metrics["models"]["linear"]["entity_agreement_f1"]
    assert main(["evaluate", "--run", str(copy), "--refresh", "--threads", "1"]) == 0
    metrics = json.loads((copy / "metrics.json").read_text())
    assert metrics["models"]["linear"]["entity_agreement_f1"] == before  # same models, same number
    assert metrics["explanations"]["sample_size"] == 2 and "entity_agreement_f1_ci" in metrics["models"]["linear"]
    from kdcore.runs import load_run

    load_run(copy)  # hashes still verify after the update


def test_distill_spec_for_the_embedded_token_corpus_and_bad_flags(tmp_path):
    import pytest

    spec = spec_from_args(build_parser().parse_args(["distill", "--corpus", "wnut16", "--name", "n"]))
    assert spec.task == "token" and spec.data.corpus == "wnut16" and spec.teacher_is_encoder
    assert spec.teacher.max_steps == 300 and spec.teacher.learning_rate == 2e-4
    with pytest.raises(ValueError, match="token file holds words"):
        spec_from_args(build_parser().parse_args(["distill", "--corpus", "wnut16", "--name", "n", "--task", "token",
                                                  "--data", str(tmp_path / "x.conll"), "--label-column", "y"]))
    assert main(["distill", "--name", "n", "--task", "token", "--corpus", "debates",
                 "--runs-dir", str(tmp_path)]) == 2  # a text corpus for a token run: refused with the fix


def test_distill_check_on_token_data(tmp_path, tiny_token_model_dir, tiny_model_dir, capsys):
    corpus = make_toy_token_corpus(n_sentences=60)
    data = _write_conll(tmp_path / "toy.conll", corpus.train)
    base = ["distill", "--check", "--data", str(data), "--name", "c"]
    assert main(base + ["--teacher", str(tiny_token_model_dir)]) == 0
    out = capsys.readouterr().out
    assert "tags match" in out and "splits: train" in out and "work" in out
    assert main(base + ["--teacher", str(tiny_model_dir)]) == 2
    assert "sequence classifier" in capsys.readouterr().out
