"""The per-tag report and the per-entity stand-in of a token run, on hand-made cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from kdcore.tasks.token.entity_trust import (EntityTrust, entity_agreement_flags, entity_scores_of, entity_stand_ins,
                                             entity_trust)
from kdcore.tasks.token.metrics import per_type_report
from kdcore.tasks.token.per_tag import (NO_ENTITY, OTHER_SPAN, per_tag_report, per_tag_table, per_tag_text,
                                        per_type_scores, type_confusion)

TYPES = ["LOC", "PER"]
GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O", "B-PER"], ["O", "O", "O"]]
# PER(0,2) right; LOC(3,4) read as PER; LOC(0,1) right; PER(2,3) missed
TEACHER = [["B-PER", "I-PER", "O", "B-PER"], ["B-LOC", "O", "O"], ["O", "O", "O"]]
# PER(0,1) overlaps the teacher's PER(0,2); LOC(3,4) on the teacher's PER(3,4); LOC(0,1) shared; PER(2,3) extra
STUDENT = [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "O", "B-PER"], ["O", "O", "O"]]


def _by_type(rows):
    return {r["type"]: r for r in rows}


def test_teacher_per_type_scores_on_gold_by_hand():
    rows = _by_type(per_type_scores(GOLD, TEACHER, TYPES, n_boot=200))
    # PER: the teacher has 2 (one right), gold has 2 -> P = R = F1 = 1/2
    assert (rows["PER"]["predicted"], rows["PER"]["support"], rows["PER"]["shared"]) == (2, 2, 1)
    assert rows["PER"]["precision"] == pytest.approx(0.5) and rows["PER"]["recall"] == pytest.approx(0.5)
    assert rows["PER"]["f1"] == pytest.approx(0.5)
    # LOC: the teacher has 1 (right), gold has 2 -> P = 1, R = 1/2, F1 = 2/3
    assert rows["LOC"]["precision"] == pytest.approx(1.0) and rows["LOC"]["recall"] == pytest.approx(0.5)
    assert rows["LOC"]["f1"] == pytest.approx(2 / 3)
    # micro: 2 right of 3 predicted and 4 gold
    micro = rows["micro avg"]
    assert (micro["precision"], micro["recall"], micro["f1"]) == pytest.approx((2 / 3, 1 / 2, 4 / 7))
    seqeval = _by_type(per_type_report(GOLD, TEACHER))  # the same numbers as seqeval's report
    for kind in ("PER", "LOC", "micro avg"):
        assert rows[kind]["f1"] == pytest.approx(seqeval[kind]["f1"])
    for kind in ("PER", "LOC", "micro avg"):
        low, high = rows[kind]["f1_ci"]
        assert low <= rows[kind]["f1"] + 1e-9 and rows[kind]["f1"] <= high + 1e-9 and low < high


def test_per_type_intervals_are_the_interval_helpers_on_the_same_draws():
    from kdcore.tasks.token.metrics import entity_counts, f1_interval, share_interval
    from kdcore.tasks.token.per_tag import type_counts

    rng = np.random.default_rng(3)
    kinds = ["O", "B-LOC", "B-PER"]
    reference = [[str(rng.choice(kinds)) for _ in range(6)] for _ in range(40)]
    predicted = [[str(rng.choice(kinds)) for _ in range(6)] for _ in range(40)]
    rows = _by_type(per_type_scores(reference, predicted, TYPES, n_boot=300, seed=5))
    per = type_counts(reference, predicted, TYPES)[:, TYPES.index("PER")]
    assert rows["PER"]["f1_ci"] == pytest.approx(f1_interval(per, n_boot=300, seed=5))
    assert rows["PER"]["precision_ci"] == pytest.approx(share_interval(per[:, 0], per[:, 1], n_boot=300, seed=5))
    assert rows["PER"]["recall_ci"] == pytest.approx(share_interval(per[:, 0], per[:, 2], n_boot=300, seed=5))
    micro = entity_counts(reference, predicted)
    assert rows["micro avg"]["f1_ci"] == pytest.approx(f1_interval(micro, n_boot=300, seed=5))


def test_student_agreement_per_type_by_hand():
    rows = _by_type(per_type_scores(TEACHER, STUDENT, TYPES, n_boot=200))
    # PER: the student has 2, the teacher 2, none shared
    assert (rows["PER"]["precision"], rows["PER"]["recall"], rows["PER"]["f1"]) == (0.0, 0.0, 0.0)
    # LOC: the student has 2, the teacher 1, one shared -> P = 1/2, R = 1, F1 = 2/3
    assert (rows["LOC"]["precision"], rows["LOC"]["recall"]) == pytest.approx((0.5, 1.0))
    assert rows["LOC"]["f1"] == pytest.approx(2 / 3)


def test_a_type_nobody_predicts_has_no_number_rather_than_a_made_up_one():
    rows = _by_type(per_type_scores(TEACHER, STUDENT, ["LOC", "PER", "ORG"], n_boot=50))
    assert rows["ORG"]["f1"] is None and rows["ORG"]["precision"] is None and rows["ORG"]["f1_ci"] is None


def test_type_confusion_counts_by_hand():
    student = type_confusion(TEACHER, STUDENT, TYPES)
    assert student["columns"] == ["LOC", "PER", OTHER_SPAN, NO_ENTITY]
    # teacher LOC(S2 0-1): the student's LOC. teacher PER(S1 0-2): an overlapping PER(0,1) -> other span;
    # teacher PER(S1 3-4): the student's LOC on the same word.
    assert student["counts"] == [[1, 0, 0, 0], [1, 0, 1, 0]]
    teacher = type_confusion(GOLD, TEACHER, TYPES)
    # gold LOC(S1 3-4): teacher PER; gold LOC(S2 0-1): LOC; gold PER(S1 0-2): PER; gold PER(S2 2-3): none
    assert teacher["counts"] == [[1, 1, 0, 0], [0, 1, 0, 1]]


def test_per_tag_report_table_and_text():
    report = per_tag_report({"teacher": TEACHER, "linear": STUDENT}, GOLD, TYPES, n_boot=100)
    assert report["confusion"]["teacher"]["reference"] == "gold"
    assert report["confusion"]["linear"]["reference"] == "teacher"
    table = per_tag_table(report)
    assert table["type"].tolist() == ["LOC", "PER", "micro avg"]
    assert table.loc[table["type"] == "LOC", "teacher f1"].item() == pytest.approx(0.6667)
    assert table.loc[table["type"] == "LOC", "linear agreement F1"].item() == pytest.approx(0.6667)
    assert "–" in table.loc[table["type"] == "micro avg", "teacher f1 95% CI"].item()
    text = per_tag_text(report)
    assert "linear agreement F1" in text and "PER" in text
    no_gold = per_tag_report({"teacher": TEACHER, "linear": STUDENT}, None, TYPES, n_boot=50)
    assert no_gold["teacher_gold"] is None and "teacher f1" not in per_tag_table(no_gold).columns


class _Logits:
    """A tagger whose word logits say O everywhere."""

    label_names = ["O", "B-PER", "I-PER"]

    def predict_word_logits(self, sentences):
        return [np.tile([2.0, 0.0, 0.0], (len(s), 1)) for s in sentences]


class _OwnDecoding(_Logits):
    """The same logits, but a decoding of its own that reads the first word as a person."""

    decodes_itself = True

    def tag(self, sentences):
        return [["B-PER"] + ["O"] * (len(s) - 1) for s in sentences]


def test_each_model_is_read_through_its_own_decoding():
    from kdcore.tasks.token.analysis import model_tags
    from kdcore.tasks.token.metrics import model_decode

    sentences = [["Ann", "runs"], ["ok"]]
    assert model_decode(_Logits(), sentences) == [["O", "O"], ["O"]]
    assert model_decode(_OwnDecoding(), sentences) == [["B-PER", "O"], ["B-PER"]]
    assert model_tags({"crf": _OwnDecoding()}, sentences)["crf"][0] == ["B-PER", "O"]


# ------------------------------------------------------------------------------ per-entity stand-in
def _logits(rows):
    return np.log(np.asarray(rows, dtype=np.float64))


def test_entity_scores_and_agreement_by_hand():
    names = ["O", "B-PER", "I-PER"]
    tags = [["B-PER", "I-PER", "O"]]
    logits = [_logits([[0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.7, 0.2, 0.1]])]
    found, scores = entity_scores_of(tags, logits, names)
    assert found == [(0, "PER", 0, 2)]
    assert scores["min_tag_probability"] == pytest.approx([0.6])
    assert scores["mean_tag_probability"] == pytest.approx([0.7])
    assert entity_agreement_flags(found, [["B-PER", "I-PER", "O"]]).tolist() == [True]
    assert entity_agreement_flags(found, [["B-PER", "O", "O"]]).tolist() == [False]  # another span


def _synthetic(seed, n=400):
    rng = np.random.default_rng(seed)
    scores = rng.random(n)
    return scores, rng.random(n) < scores


def test_entity_calibration_is_monotone_and_fitted_on_dev_only():
    dev_scores, dev_agree = _synthetic(0)
    records = []
    for seed in (1, 2):
        test_scores, test_agree = _synthetic(seed, n=150)
        candidates = {"min_tag_probability": test_scores, "mean_tag_probability": test_scores ** 0.5}
        records.append(entity_trust("s", {"min_tag_probability": dev_scores, "mean_tag_probability": dev_scores ** 0.5},
                                    dev_agree, candidates, test_agree, np.arange(150), bootstrap=50))
    assert records[0].calibrator.to_dict() == records[1].calibrator.to_dict()  # test data changes nothing
    assert records[0].score == records[1].score
    assert records[0].test_brier != records[1].test_brier  # while the test figures do change
    grid = np.linspace(-0.5, 1.5, 201)
    p = records[0].probabilities(grid)
    assert np.all(np.diff(p) >= -1e-12) and p[-1] > p[0]
    assert np.all((p >= 0) & (p <= 1))


def test_coverage_at_090_on_a_hand_made_curve():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    agree = np.array([True, True, True, False, True])  # kept precision 1, 1, 1, 3/4, 4/5
    dev = {"min_tag_probability": scores, "mean_tag_probability": scores}
    record = entity_trust("s", dev, agree, dev, agree, np.arange(5), bootstrap=50)
    assert record.coverage == pytest.approx(0.6) and record.agreement_at_coverage == pytest.approx(1.0)
    assert record.test_agreement == pytest.approx(0.8)
    agree = np.array([True, False, True, True, True])  # 1, 1/2, 2/3, 3/4, 4/5: only the first entity
    record = entity_trust("s", dev, agree, dev, agree, np.arange(5), bootstrap=50)
    assert record.coverage == pytest.approx(0.2)
    again = EntityTrust.from_dict(record.to_dict())
    assert again.coverage == record.coverage and again.calibrator.to_dict() == record.calibrator.to_dict()
    assert "surest of" in again.headline()


def test_entity_trust_refuses_a_dev_split_without_entities():
    empty = {"min_tag_probability": np.zeros(0), "mean_tag_probability": np.zeros(0)}
    with pytest.raises(ValueError, match="dev split with entities"):
        entity_trust("s", empty, np.zeros(0, bool), empty, np.zeros(0, bool), [])


def test_entity_stand_ins_mark_each_entity_start():
    names = ["O", "B-PER", "I-PER"]
    scores = np.array([0.2, 0.4, 0.6, 0.8, 0.9, 0.95])
    agree = np.array([False, False, True, True, True, True])
    dev = {"min_tag_probability": scores, "mean_tag_probability": scores}
    record = entity_trust("s", dev, agree, dev, agree, np.arange(6), bootstrap=10)
    tags = [["O", "B-PER", "O", "B-PER"], ["O"]]
    logits = [_logits([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.9, 0.05, 0.05], [0.6, 0.3, 0.1]]), _logits([[1, 1e-9, 1e-9]])]
    marks = entity_stand_ins(record, tags, logits, names)
    assert set(marks[0]) == {1, 3} and marks[1] == {}
    assert marks[0][1] >= marks[0][3]  # the surer entity is at least as likely to agree


# ------------------------------------------------------------------------------ a built run
def test_a_token_run_stores_the_per_tag_report_and_the_entity_stand_in(tiny_token_run_dir):
    import json
    from pathlib import Path

    metrics = json.loads((Path(tiny_token_run_dir) / "metrics.json").read_text())
    block = metrics["per_tag"]
    assert block["types"] == ["per", "work"] and block["sentences"] == metrics["test_size"]
    seqeval = _by_type(metrics["models"]["teacher"]["per_type"])
    for row in block["teacher_gold"]:
        if row["type"] in seqeval and row["f1"] is not None:
            assert row["f1"] == pytest.approx(seqeval[row["type"]]["f1"])
    assert set(block["agreement"]) == set(metrics["models"]) - {"teacher"}
    for name, rows in block["agreement"].items():
        micro = _by_type(rows)["micro avg"]
        assert micro["f1"] == pytest.approx(metrics["models"][name]["entity_agreement_f1"])
    trust = json.loads((Path(tiny_token_run_dir) / "trust.json").read_text())
    assert trust["entities"], "no per-entity stand-in record"
    for entry in trust["entities"].values():
        record = EntityTrust.from_dict(entry)
        assert 0.0 <= record.coverage <= 1.0 and record.target == pytest.approx(0.90)
        assert record.test_entities == record.curve.n_texts


def test_evaluate_prints_the_per_tag_table(tiny_token_run_dir, capsys):
    from kdcore.cli import main

    assert main(["evaluate", "--run", str(tiny_token_run_dir), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "Per entity type" in out and "linear agreement F1" in out and "teacher f1" in out
    assert "per entity: score" in out and "coverage at entity agreement 0.90" in out


HOSTILE = '<img src=x onerror="alert(1)">'


def test_the_report_shows_the_per_tag_section_with_hostile_tag_names_escaped(tiny_token_run_dir):
    from kdcore.runs import load_run
    from kdcore.tasks.token.report import build_token_report, render_token_html

    report = build_token_report(load_run(tiny_token_run_dir), n_examples=0)
    page = render_token_html(report)
    assert "Per entity type" in page and "Confusion between types" in page and "Stand-in per entity" in page
    assert "only overlaps them" in page and "fitted on the dev sentences" in page  # their definitions
    block = report["per_tag"]
    block["types"] = [HOSTILE, "work"]
    for rows in [block["teacher_gold"], *block["agreement"].values()]:
        for row in rows:
            row["type"] = HOSTILE if row["type"] == "per" else row["type"]
    for confusion in block["confusion"].values():
        confusion["rows"] = [HOSTILE, "work"]
        confusion["columns"] = [HOSTILE, *confusion["columns"][1:]]
    report["entity_trust"][0]["student"] = HOSTILE
    page = render_token_html(report)
    assert HOSTILE not in page and "&lt;img src=x" in page
    assert page.count("&lt;img src=x") >= 3  # the table's row, a confusion row and column, the student
