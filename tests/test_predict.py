"""`python -m kdcore predict`: a run's certified hybrid answers a file of texts (student where certified,
teacher elsewhere), and refuses with the fix a run never audited or a token run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from kdcore.certify import HYBRID_FILE
from kdcore.cli import main
from kdcore.runs import load_run, update_run_file
from kdcore.trust import load_trust, stand_in_scores

TEXTS = ["a good fun film", "the worst movie", "a good fun film", "boring and dull story", "=cmd|' /C calc'!A0",
         "great actors in a great film", "weak plot", "very bad and very boring"]


@pytest.fixture()
def runs(tiny_run_dir, tmp_path):
    folder = tmp_path / "runs"
    shutil.copytree(tiny_run_dir, folder / "tiny")
    return folder


def _certify_by_hand(run, student: str, threshold: float) -> str:
    """A hybrid.json as `audit` writes it, with a threshold chosen here (the toy dev split certifies none)."""
    score = load_trust(run).students[student].score
    entry = {"student": student, "score": score, "threshold": threshold, "target": 0.95, "confidence": 0.95,
             "teacher_passes_saved": 0.5}
    update_run_file(run, HYBRID_FILE, {"target": 0.95, "confidence": 0.95, "students": {student: entry}})
    return score


def test_predict_answers_with_the_student_where_certified_and_the_teacher_elsewhere(runs, tmp_path, capsys):
    run = load_run(runs / "tiny")
    student = run.student("linear")
    logits = student.predict_logits(TEXTS)
    score_name = load_trust(run).students["linear"].score
    scores = stand_in_scores(logits, score_name)
    threshold = float(np.median(scores))
    _certify_by_hand(run, "linear", threshold)
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "answers.csv"
    assert main(["predict", "tiny", "--runs-dir", str(runs), "--input", str(source), "--output", str(out),
                 "--threads", "1"]) == 0
    assert "answers written" in capsys.readouterr().err
    frame = pd.read_csv(out, keep_default_na=False)
    assert len(frame) == len(TEXTS)  # every line answered, the repeated one too
    routed = scores >= threshold
    assert 0 < routed.sum() < len(TEXTS)
    assert frame["answered_by"].tolist() == ["student" if r else "teacher" for r in routed]
    names = run.label_names
    teacher = load_run(runs / "tiny").teacher.predict_logits(TEXTS).argmax(1)
    expected = [names[s] if r else names[t] for s, t, r in zip(logits.argmax(1), teacher, routed)]
    assert frame["answer"].tolist() == expected
    assert frame["student_answer"].tolist() == [names[i] for i in logits.argmax(1)]
    calibrated = load_trust(run).students["linear"].calibrator(scores)
    assert np.allclose(frame["p_agrees"].to_numpy(float), calibrated)
    assert frame["text"].iloc[4].startswith("'=")  # a formula cell is neutralised in the CSV


def test_predict_reads_csv_and_jsonl_and_writes_jsonl_or_stdout(runs, tmp_path, capsys):
    run = load_run(runs / "tiny")
    _certify_by_hand(run, "mlp", -1e9)  # every text goes to the student
    table = tmp_path / "in.csv"
    pd.DataFrame({"id": range(3), "review": TEXTS[:3]}).to_csv(table, index=False)
    assert main(["predict", "tiny", "--runs-dir", str(runs), "--input", str(table), "--text-column", "review"]) == 0
    printed = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert printed["text"].tolist() == TEXTS[:3] and set(printed["answered_by"]) == {"student"}
    lines = tmp_path / "in.jsonl"
    lines.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS[:4]), encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    assert main(["predict", str(runs / "tiny"), "--input", str(lines), "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == TEXTS[:4] and all(r["student"] == "mlp" for r in rows)
    assert all(0.0 <= r["p_agrees"] <= 1.0 for r in rows)


def test_predict_refuses_a_run_without_a_hybrid_and_a_bad_output(runs, tmp_path, capsys):
    source = tmp_path / "texts.txt"
    source.write_text("a good film\n", encoding="utf-8")
    assert main(["predict", "tiny", "--runs-dir", str(runs), "--input", str(source)]) == 2
    err = capsys.readouterr().err
    assert "no certified hybrid" in err and "python -m kdcore audit --run tiny" in err
    assert main(["predict", "tiny", "--runs-dir", str(runs), "--input", str(source), "--output", "x.xlsx"]) == 2
    assert ".csv or .jsonl" in capsys.readouterr().err
    _certify_by_hand(load_run(runs / "tiny"), "linear", 0.0)
    assert main(["predict", "tiny", "--runs-dir", str(runs), "--input", str(source), "--student", "nope"]) == 2
    assert "no student 'nope'" in capsys.readouterr().err


def test_predict_refuses_a_token_run(tiny_token_run_dir, tmp_path, capsys):
    source = tmp_path / "texts.txt"
    source.write_text("the film\n", encoding="utf-8")
    assert main(["predict", str(tiny_token_run_dir), "--input", str(source)]) == 2
    assert "tags words" in capsys.readouterr().err
