"""The audit engine: slice metrics against brute-force counts, probes on a fake teacher whose flips are known,
the certified threshold's guarantee over many draws, the hybrid model, and the audit of a tiny run."""

from __future__ import annotations

import numpy as np
import pytest

from kdcore.audit.probes import (
    deletion_probe,
    negate,
    negation_probe,
    read_swap_list,
    run_probe,
    swap_probe,
    swap_words,
)
from kdcore.audit.slices import (
    AuditData,
    automatic_slices,
    slice_metrics,
    user_slice,
    worst_slices,
)
from kdcore.certify import (
    HybridModel,
    certify_threshold,
    clopper_pearson_lower,
    min_routed,
)

WORDS = ["good", "bad", "not", "but", "plot", "actor", "great", "dull", "film", "story"]


def _synthetic(n=400, seed=0):
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 25)))) for _ in range(n)]
    gold = rng.integers(0, 2, n)
    proba = rng.dirichlet([1, 1], n)
    teacher = proba.argmax(1)
    # the student disagrees with the teacher mostly on texts with 'but' and the teacher's class 1
    bad = np.array(["but" in t.split() for t in texts]) & (teacher == 1)
    agree = np.where(bad, rng.random(n) < 0.4, rng.random(n) < 0.95)
    student = np.where(agree, teacher, 1 - teacher)
    stand_in = rng.random(n) < 0.6
    source = rng.choice(["web", "news", "forum"], n).tolist()
    return AuditData(texts, ["neg", "pos"], gold, proba, {"s": student}, {"s": stand_in},
                     windows=rng.integers(1, 3, n), columns={"source": source})


def test_slice_metrics_match_a_brute_force_count():
    data = _synthetic()
    slices = automatic_slices(data) + [user_slice(data, "keyword", "plot"), user_slice(data, "regex", r"\bno?t\b"),
                                       user_slice(data, "column", "news", column="source")]
    names = {s.name for s in slices}
    assert {"gold class = neg", "teacher disagrees with gold", "has a negation word", "has a contrast word",
            "longer than one teacher window", "source = news", "keyword: plot"} <= names
    teacher = data.teacher_proba.argmax(1)
    for s in slices:
        m = slice_metrics(data, s.mask)
        rows = [i for i in range(len(data)) if s.mask[i]]
        assert m["n"] == len(rows)
        assert m["accuracy"]["k"] == sum(teacher[i] == data.gold[i] for i in rows)
        fid = m["students"]["s"]["fidelity"]
        assert fid["k"] == sum(data.students["s"][i] == teacher[i] for i in rows)
        assert fid["ci"][0] <= fid["value"] <= fid["ci"][1]
        assert m["students"]["s"]["coverage"]["k"] == sum(bool(data.stand_in["s"][i]) for i in rows)
    negation = next(s for s in slices if s.name == "has a negation word")
    assert negation.mask.tolist() == ["not" in t.split() for t in data.texts]
    news = next(s for s in slices if s.name == "source = news")
    assert news.mask.tolist() == [v == "news" for v in data.columns["source"]]
    # length bins cover every text exactly once
    lengths = [s.mask for s in slices if s.group == "length"]
    assert len(lengths) >= 2 and (np.sum(lengths, axis=0) == 1).all()


def test_worst_slices_find_the_planted_conjunction():
    data = _synthetic()
    rows = worst_slices(data, "s", automatic_slices(data), min_support=20)
    assert rows, "the planted slice should be found"
    top = rows[0]["slice"]
    assert "has a contrast word" in top and "teacher class = pos" in top
    assert all(r["gap_lower"] > 0 and r["n"] >= 20 for r in rows)
    assert [r["gap_lower"] for r in rows] == sorted((r["gap_lower"] for r in rows), reverse=True)


def test_worst_slices_list_each_set_of_texts_once_under_its_simplest_name():
    data = _synthetic()
    by_name = {s.name: s for s in automatic_slices(data)}
    # "but" is the only contrast word the texts use: three slices of the identical texts, one name each.
    by_name["keyword: but"] = user_slice(data, "keyword", "but")
    by_name["texts with the word but"] = user_slice(data, "regex", r"\bbut\b", name="texts with the word but")
    assert (by_name["keyword: but"].mask == by_name["has a contrast word"].mask).all()
    rows = worst_slices(data, "s", list(by_name.values()), min_support=20, top=1000)
    masks = [np.logical_and.reduce([by_name[part].mask for part in r["slice"].split(" & ")]) for r in rows]
    assert len({m.tobytes() for m in masks}) == len(rows)  # no set of texts twice
    named = " | ".join(r["slice"] for r in rows)
    assert "keyword: but" in named and "contrast" not in named and "texts with the word" not in named
    # without the duplicates the same sets are found, only named by the slice that was there
    alone = worst_slices(data, "s", automatic_slices(data), min_support=20, top=1000)
    alone_masks = [np.logical_and.reduce([by_name[part].mask for part in r["slice"].split(" & ")]) for r in alone]
    assert {m.tobytes() for m in alone_masks} == {m.tobytes() for m in masks} and len(alone) == len(rows)


def test_user_slice_refuses_bad_input():
    data = _synthetic(50)
    with pytest.raises(ValueError, match="not a valid regular expression"):
        user_slice(data, "regex", "(unclosed")
    with pytest.raises(ValueError, match="no column 'group'"):
        user_slice(data, "column", "x", column="group")
    with pytest.raises(ValueError, match="empty"):
        user_slice(data, "keyword", "  ")
    assert user_slice(data, "keyword", "GOOD").mask.tolist() == ["good" in t.split() for t in data.texts]


class NotFlipper:
    """A fake teacher: class 1 (pos) unless the text has the word 'not', then class 0."""

    def predict_proba(self, texts):
        return np.array([[0.9, 0.1] if "not" in t.lower().split() else [0.2, 0.8] for t in texts])


class Constant:
    """A fake student that always says pos, whatever the text."""

    def predict_proba(self, texts):
        return np.tile([0.3, 0.7], (len(texts), 1))


def test_negation_probe_on_a_teacher_whose_flips_are_known():
    texts = ["the film is good", "it was fun", "plot good", "she is not dull", "they are great"]
    out = run_probe(negation_probe(), {"teacher": NotFlipper(), "student": Constant()}, texts, ["neg", "pos"])
    # 'plot good' has no auxiliary; 'she is not dull' already has 'not' after its auxiliary
    assert out["n_applied"] == 3
    teacher = out["models"]["teacher"]
    assert teacher["flips"] == 3 and teacher["flip_rate"] == 1.0
    assert teacher["mean_change"] == pytest.approx(-0.7)
    assert out["models"]["student"]["flips"] == 0 and out["models"]["student"]["mean_change"] == 0
    only = out["teacher_only_flips"]["student"]
    assert only["count"] == 3
    first = only["examples"][0]
    assert first["edited"] == "the film is not good" and first["teacher"] == ["pos", "neg"]
    assert first["student"] == ["pos", "pos"]


def test_swap_and_deletion_probes():
    edited, words = swap_words("He said his wife liked HIM. Mary?", [("he", "she"), ("his", "her"), ("him", "her"),
                                                                      ("wife", "husband"), ("john", "mary")])
    assert edited == "She said her husband liked HER. John?"
    assert len(words) == 5
    assert swap_words("no identity words here", [("he", "she")]) is None
    assert negate("it is fine") == ("it is not fine", ["is → is not"])
    assert negate("nothing to see") is None
    assert negate("I can't say it was bad") == ("I can't say it was not bad", ["was → was not"])
    swapped = run_probe(swap_probe([("not", "very")]), {"teacher": NotFlipper(), "s": Constant()},
                        ["not good", "very good", "good"], ["neg", "pos"])
    assert swapped["n_applied"] == 2 and swapped["models"]["teacher"]["flips"] == 2
    # the teacher's own top word in a text with 'not' is 'not': deleting it flips the teacher
    probe = deletion_probe(NotFlipper(), ["a not good film", "a good film"], "teacher")
    assert probe.edit("a not good film")[0] == "a good film"
    out = run_probe(probe, {"teacher": NotFlipper(), "s": Constant()}, ["a not good film", "a good film"],
                    ["neg", "pos"])
    assert out["models"]["teacher"]["flips"] == 1


def test_read_swap_list(tmp_path):
    path = tmp_path / "swaps.txt"
    path.write_text("# identity terms\nhe,she\nson daughter\n\n", encoding="utf-8")
    assert read_swap_list(path) == [("he", "she"), ("son", "daughter")]
    path.write_text("he she it\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        read_swap_list(path)


def _true_fidelity(threshold):
    """Agreement is Bernoulli(1 - 0.3 (1 - s)^2) for s ~ U(0, 1): the fidelity of the texts scored >= threshold
    is 1 - 0.1 (1 - threshold)^2, at least 0.95 for thresholds >= 1 - sqrt(0.5) (coverage 0.707)."""
    lam = min(max(threshold, 0.0), 1.0)
    return 1 - 0.1 * (1 - lam) ** 2


def test_certified_threshold_holds_its_guarantee_over_many_draws():
    rng = np.random.default_rng(1)
    target, confidence, draws = 0.95, 0.9, 500
    failures, certified, coverages = 0, 0, []
    for _ in range(draws):
        s = rng.random(800)
        agree = rng.random(800) < 1 - 0.3 * (1 - s) ** 2
        result = certify_threshold(s, agree, target, confidence)
        if result["threshold"] is None:
            continue
        certified += 1
        coverages.append(result["coverage"])
        failures += _true_fidelity(result["threshold"]) < target
        assert result["lower_bound"] >= target - 1e-9
    assert certified > draws * 0.9, "the procedure should usually certify a threshold here"
    assert 0.4 < np.mean(coverages) < np.sqrt(0.5) + 0.02  # the most a perfect rule could route is 0.707
    risk = 1 - confidence
    assert failures / draws <= risk + 3 * np.sqrt(risk * (1 - risk) / draws)


def test_clopper_pearson_and_floor():
    assert min_routed(0.95, 0.95) == 59  # 0.95 ** 59 < 0.05 <= 0.95 ** 58
    assert clopper_pearson_lower(59, 59, 0.95) >= 0.95 > clopper_pearson_lower(58, 58, 0.95)
    assert certify_threshold(np.ones(30), np.ones(30, bool))["threshold"] is None  # too few texts to certify
    with pytest.raises(ValueError, match="strictly between"):
        certify_threshold([0.5], [True], target=1.0)


class LogitStudent:
    """Fake student: logits from a fixed lookup (confident on 'sure' texts)."""

    def predict_logits(self, texts):
        return np.array([[0.0, 5.0] if "sure" in t else [0.0, 0.1] for t in texts])

    def predict_proba(self, texts):
        z = self.predict_logits(texts)
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)


class CountingTeacher:
    def __init__(self):
        self.seen = []

    def predict_proba(self, texts):
        self.seen += list(texts)
        return np.tile([0.9, 0.1], (len(texts), 1))


def test_hybrid_sends_only_unsure_texts_to_the_teacher():
    teacher = CountingTeacher()
    hybrid = HybridModel("s", "logit_margin", 1.0, 0.95, 0.95, LogitStudent(), teacher)
    texts = ["sure one", "maybe", "sure two", "unsure"]
    assert hybrid.routes(texts).tolist() == [True, False, True, True]  # 'unsure' contains 'sure'
    assert hybrid.predict(texts).tolist() == [1, 0, 1, 1]
    assert teacher.seen == ["maybe"]
    never = HybridModel("s", "logit_margin", None, 0.95, 0.95, LogitStudent(), CountingTeacher())
    assert never.predict(texts).tolist() == [0, 0, 0, 0]


def test_audit_of_a_tiny_run_is_written_into_it(tiny_run_dir, tmp_path):
    import shutil

    from kdcore.audit import AUDIT_FILE, audit_run, audit_text, load_audit
    from kdcore.runs import load_run

    copy = shutil.copytree(tiny_run_dir, tmp_path / "tiny")
    run = load_run(copy)
    audit = audit_run(run, user=[{"kind": "keyword", "value": "film"}], min_support=1)
    again = load_run(copy)  # the manifest's hashes still verify
    assert load_audit(again) == audit | {"certified": audit["certified"]}
    assert (copy / AUDIT_FILE).is_file() and AUDIT_FILE in again.manifest["files"]
    assert any(s["name"] == "keyword: film" for s in audit["slices"])
    assert {r["probe"] for r in audit["probes"]["results"]} >= {"negation", "swap", "delete top word of teacher"}
    assert set(audit["certified"]) == set(run.student_names)
    text = audit_text(audit)
    assert "Certified stand-in thresholds" in text and "linear" in text


def test_cli_audit_prints_and_saves(tiny_run_dir, tmp_path, capsys):
    import shutil

    from kdcore.cli import main

    shutil.copytree(tiny_run_dir, tmp_path / "runs" / "tiny")
    swaps = tmp_path / "swaps.txt"
    swaps.write_text("good,bad\n", encoding="utf-8")
    assert main(["audit", "--run", "tiny", "--runs-dir", str(tmp_path / "runs"), "--swap-list", str(swaps),
                 "--min-support", "1", "--slice", "keyword:film", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "Probes on 4 test texts" in out and "swap (applies to 2 texts)" in out
    assert (tmp_path / "runs" / "tiny" / "audit.json").is_file()
    assert main(["audit", "--run", "tiny", "--runs-dir", str(tmp_path / "runs"), "--slice", "colour=red"]) == 2
    assert "keyword:WORD" in capsys.readouterr().err
