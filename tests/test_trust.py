"""The trust curve on constructed cases with known answers; the stand-in score chosen on dev; calibration
monotone; faithfulness on the model's own class; the views with and without a run's trust record."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import open_section
from kdcore import trust as T
from kdcore.tasks.sequence.trust import trust_of_splits
from kdcore.calibration import _FITTERS

ROOT = Path(__file__).resolve().parents[1]


def _logits_for(agree: np.ndarray, margins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-class student logits with the given logit margins (student says class 1), and teacher logits that
    agree exactly where ``agree`` is true."""
    student = np.stack([np.zeros_like(margins), margins], axis=1)
    teacher = np.where(agree[:, None], [[0.0, 1.0]], [[1.0, 0.0]])
    return student, teacher


# ------------------------------------------------------------------------------ the curve
def test_trust_curve_coverage_at_095_is_known():
    # 40 texts, scores 40..1; sorted surest first, the texts at positions 3, 30 and 40 disagree.
    # Fidelity of the top k: k=29 -> 28/29 = 0.966 (the last k reaching 0.95), k=30 -> 28/30, k=39 -> 37/39 = 0.949.
    scores = np.arange(40, 0, -1, dtype=float)
    agree = np.ones(40, bool)
    agree[[2, 29, 39]] = False
    order = np.random.default_rng(0).permutation(40)  # input order must not matter
    curve = T.trust_curve(scores[order], agree[order])
    assert curve.coverage_at(0.95) == pytest.approx(29 / 40)
    assert curve.fidelity[curve.point_at(0.95)] == pytest.approx(28 / 29)
    assert curve.fidelity[-1] == pytest.approx(37 / 40) and curve.coverage[-1] == 1.0
    assert curve.fidelity[0] == 1.0 and curve.coverage[0] == pytest.approx(1 / 40)
    assert curve.coverage_at(0.99) == pytest.approx(2 / 40)  # before the first disagreement
    assert curve.coverage_at(0.90) == 1.0


def test_trust_curve_never_splits_tied_scores():
    scores = np.arange(40, 0, -1, dtype=float)
    scores[29] = scores[28]  # positions 29 and 30 tie: the cut at 29 is gone, the next one down is 28
    agree = np.ones(40, bool)
    agree[[2, 29, 39]] = False
    curve = T.trust_curve(scores, agree)
    assert 29 not in curve.covered
    assert curve.coverage_at(0.95) == pytest.approx(28 / 40)
    assert T.trust_curve(np.ones(5), np.array([1, 1, 1, 1, 0], bool)).covered == [5]


def test_no_share_reaching_the_target_gives_zero_coverage_and_says_so():
    agree = np.array([False, True, True, False])
    student, teacher = _logits_for(agree, np.array([4.0, 3.0, 2.0, 1.0]))
    record = T.student_trust("s", student, teacher, student, teacher, bootstrap=0)
    assert record.coverage == 0.0 and record.fidelity_at_coverage is None and record.dev_threshold is None
    assert "No group" in record.headline() and "50%" in record.headline()
    assert not any(v.likely for v in T.assess_logits(record, student))


# ------------------------------------------------------------------------------ the score chosen on dev
def test_score_with_the_best_dev_auroc_is_chosen():
    # Margins beyond ~37 saturate float64 probabilities at 1: only the logit margin still ranks these texts.
    agree = np.array([True] * 6 + [False] * 6)
    margins = np.r_[np.linspace(60, 70, 6), np.linspace(40, 50, 6)]
    student, teacher = _logits_for(agree, margins)
    name, aurocs = T.choose_score(student, teacher)
    assert name == "logit_margin" and aurocs["logit_margin"] == pytest.approx(1.0)
    assert aurocs["max_probability"] == pytest.approx(0.5)


def test_a_later_candidate_wins_when_it_predicts_agreement_better():
    # Three classes: the agreeing texts have a small margin over a close runner-up but a higher top
    # probability than the disagreeing ones, whose probability is spread over three classes.
    rng = np.random.default_rng(1)
    sure_pair = np.array([5.0, 4.9, -10.0]) + rng.normal(0, 0.01, (8, 3))
    spread = np.array([1.0, 0.5, 0.5]) + rng.normal(0, 0.01, (8, 3))
    student = np.r_[sure_pair, spread]
    teacher = np.r_[np.tile([1.0, 0.0, 0.0], (8, 1)), np.tile([0.0, 1.0, 0.0], (8, 1))]
    name, aurocs = T.choose_score(student, teacher)
    assert aurocs["logit_margin"] < 0.5 and aurocs["probability_margin"] < 0.5
    assert aurocs["max_probability"] == pytest.approx(1.0) and aurocs["negative_entropy"] == pytest.approx(1.0)
    assert name == "max_probability"  # tied with minus the entropy: the earlier candidate


def test_dev_without_disagreement_falls_back_and_calibrates_to_a_constant():
    student, teacher = _logits_for(np.ones(6, bool), np.arange(1.0, 7.0))
    name, aurocs = T.choose_score(student, teacher)
    assert name == T.SCORE_NAMES[0] and all(np.isnan(v) for v in aurocs.values())
    calibrator = T.fit_calibrator(T.stand_in_scores(student, name), np.ones(6, bool))
    assert calibrator.method == "constant" and calibrator([0.0, 100.0]).tolist() == [1.0, 1.0]
    # The whole dev split reaches the target: below its lowest score dev says nothing worse, so every
    # text is a likely stand-in, even one less sure than any dev text.
    record = T.student_trust("s", student, teacher, student[:2] * 0.01, teacher[:2], bootstrap=0)
    assert record.dev_coverage == 1.0 and all(v.likely for v in T.assess_logits(record, student[:2] * 0.01))


# ------------------------------------------------------------------------------ calibration
@pytest.mark.parametrize("method", ["isotonic", "platt", "chosen"])
def test_calibration_is_monotone_and_a_probability(method):
    rng = np.random.default_rng(2)
    scores = rng.normal(0, 2, 400)
    agree = rng.random(400) < 1 / (1 + np.exp(-scores))
    calibrator = T.fit_calibrator(scores, agree) if method == "chosen" else _FITTERS[method](scores, agree)
    grid = np.linspace(-12, 12, 2001)
    p = calibrator(grid)
    assert np.all(np.diff(p) >= -1e-12) and p.min() >= 0 and p.max() <= 1
    assert p[-1] > p[0] + 0.5  # it tracks the score, not a constant
    if method == "chosen":
        assert set(calibrator.brier) == {"isotonic", "platt"}
        assert calibrator.method == min(calibrator.brier, key=calibrator.brier.get)
        # The record survives JSON and predicts the same numbers.
        again = T.Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
        assert np.array_equal(again(grid), p)


def test_student_trust_threshold_from_dev_and_round_trip():
    rng = np.random.default_rng(3)
    teacher = rng.normal(0, 2, (1200, 2))
    student = teacher + rng.normal(0, 1.5, (1200, 2))
    record = T.student_trust("lin", student[:600], teacher[:600], student[600:], teacher[600:], bootstrap=50)
    dev_agree = student[:600].argmax(1) == teacher[:600].argmax(1)
    dev_scores = T.stand_in_scores(student[:600], record.score)
    assert dev_agree[dev_scores >= record.dev_threshold].mean() >= 0.95  # the threshold's meaning, on dev
    test_agree = student[600:].argmax(1) == teacher[600:].argmax(1)
    assert record.test_fidelity == pytest.approx(test_agree.mean())
    assert record.fidelity_at_coverage >= 0.95 and 0 < record.coverage < 1 and record.coverage_se > 0
    low, high = record.coverage_ci
    assert low < high and high - low > 2 * record.coverage_se  # a 95% interval spans about 4 SE
    verdicts = T.assess_logits(record, student[600:])
    likely = np.array([v.likely for v in verdicts])
    assert likely.mean() == pytest.approx(record.threshold_coverage)
    assert test_agree[likely].mean() == pytest.approx(record.threshold_fidelity)
    assert f"{record.coverage:.0%} of test texts lin is surest of" in record.headline()
    again = T.StudentTrust.from_dict(json.loads(json.dumps(record.to_dict(), allow_nan=False)))
    assert again.headline() == record.headline() and again.curve == record.curve
    assert [v.probability for v in T.assess_logits(again, student[:5])] == \
        [v.probability for v in T.assess_logits(record, student[:5])]


# ------------------------------------------------------------------------------ faithfulness on the own class
class AdditiveModel:
    """p(pos) = 0.2 + 0.4 [good] + 0.3 [fun] + 0.05 [film] - 0.1 [bad] (words present)."""

    name = "additive"
    label_names = ["neg", "pos"]
    effects = {"good": 0.4, "fun": 0.3, "film": 0.05, "bad": -0.1}

    def predict_proba(self, texts):
        from kdcore.words import split_words

        pos = np.array([0.2 + sum(self.effects.get(w.text, 0.0) for w in set(split_words(t))) for t in texts])
        return np.stack([1 - pos, pos], axis=1)


def test_faithfulness_on_the_models_own_class_when_it_differs_from_the_teachers():
    from kdcore import explain_metrics as em
    from kdcore.attribution import explain

    model, text = AdditiveModel(), "good fun film bad"  # p(pos) = 0.85: the model says pos
    for_teacher = explain(model, text, method="occlusion", target="neg")[0]  # the teacher said neg
    plain = em.faithfulness(model, for_teacher)
    own = em.own_class_faithfulness(model, for_teacher)
    assert own["own_target"] == 1
    # Own class: the rationale (k = 1) is "good"; p(pos) 0.85 -> 0.45 without it, 0.6 with it alone.
    assert own["comprehensiveness_own_class"] == pytest.approx(0.40)
    assert own["sufficiency_own_class"] == pytest.approx(0.25)
    # The teacher's class: the rationale is "bad"; p(neg) 0.15 -> 0.05 without it.
    assert plain["comprehensiveness"] == pytest.approx(0.10)
    same = em.own_class_faithfulness(model, explain(model, text, method="occlusion", target="pos")[0])
    assert same == own


def test_evaluate_explanations_reports_both_classes(tiny_run_dir):
    from kdcore import explain_metrics as em
    from kdcore.runs import load_run

    run = load_run(tiny_run_dir)
    frame = em.evaluate_explanations(run.teacher, run.students, run.split("test").texts,
                                     methods=("gradient_x_input",))
    assert set(em.OWN_CLASS_METRICS) <= set(frame.columns)
    same = frame[frame["own_target"] == frame["target"]]
    assert len(same) and np.allclose(same["comprehensiveness"], same["comprehensiveness_own_class"], equal_nan=True)
    teacher = frame[frame["model"] == "teacher"]
    assert (teacher["own_target"] == teacher["target"]).all()
    summary = em.summary_table(frame)
    assert {"comprehensiveness_own_class_mean", "sufficiency_own_class_mean"} <= set(summary.columns)


# ------------------------------------------------------------------------------ a run's record
def test_a_built_run_has_a_trust_record_for_every_student(tiny_run_dir):
    from kdcore.runs import load_run

    run = load_run(tiny_run_dir)
    record = T.load_trust(run)
    assert record is not None and set(record.students) == set(run.student_names)
    assert record.dev_size == len(run.split("dev")) and record.test_size == len(run.split("test"))
    dev_logits = run.array(T.DEV_LOGITS_FILE)
    assert np.allclose(dev_logits, run.teacher.predict_logits(run.split("dev").texts), atol=1e-5)
    for name, entry in record.students.items():
        test_logits = run.student(name).predict_logits(run.split("test").texts)
        assert entry.test_fidelity == pytest.approx(run.metrics["models"][name]["fidelity"])
        assert entry.curve.n_texts == len(test_logits)
    verdicts = T.assess(record, run.students, ["a good film", "a dull movie"])
    assert set(verdicts) == set(run.student_names) and all(len(v) == 2 for v in verdicts.values())
    assert all(v.agrees is None and v.stands_in == v.likely for per_text in verdicts.values() for v in per_text)
    # Given the teacher's classes, each verdict says whether the student gives them; one that does not is never
    # a stand-in there, whatever its p(agrees).
    texts = ["a good film", "a dull movie"]
    teacher_classes = run.teacher.predict_logits(texts).argmax(1)
    for name, per_text in T.assess(record, run.students, texts, teacher_classes).items():
        own = run.student(name).predict_logits(texts).argmax(1)
        assert [v.agrees for v in per_text] == list(own == teacher_classes)
        flipped = T.assess(record, {name: run.student(name)}, texts, 1 - own)[name]
        assert all(v.agrees is False and not v.stands_in and v.label == "disagrees with the teacher here"
                   for v in flipped)
    with pytest.raises(ValueError, match="3 teacher classes for 2 rows"):
        T.assess(record, run.students, texts, [0, 1, 0])


def test_no_dev_split_gives_an_empty_record_that_says_why():
    from kdcore.data import TextDataset

    test = TextDataset(["good film", "bad film"], None, ["neg", "pos"], name="test")
    record, dev_logits = trust_of_splits(None, {}, None, test)  # refuses before touching the teacher
    assert record.students == {} and dev_logits is None and "no dev split" in record.note
    assert "no dev split" in record.text()
    again = T.RunTrust.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again.note == record.note and again.test_size == 2


def _without_trust(run_dir: Path, copy: Path) -> Path:
    """A copy of a run as it was before kd-lens computed trust curves (no trust.json, no dev logits)."""
    shutil.copytree(run_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for name in (T.TRUST_FILE, T.DEV_LOGITS_FILE):
        (copy / name).unlink()
        manifest["files"].pop(name)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_an_old_run_loads_without_a_record_and_evaluate_adds_it(tiny_run_dir, tmp_path, capsys):
    from kdcore.cli import main
    from kdcore.runs import load_run

    old = _without_trust(Path(tiny_run_dir), tmp_path / "runs" / "old")
    assert T.load_trust(load_run(old)) is None
    assert main(["evaluate", "--run", str(old), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "Computing the trust curves" in out and "coverage at fidelity 0.95" in out
    run = load_run(old)  # the hashes of the new files are in the manifest
    record = T.load_trust(run)
    fresh = T.load_trust(load_run(tiny_run_dir))
    assert record.to_dict()["students"].keys() == fresh.to_dict()["students"].keys()
    for name in record.students:
        assert record.students[name].curve == fresh.students[name].curve
    assert main(["evaluate", "--run", str(old), "--threads", "1"]) == 0
    assert "Computing" not in capsys.readouterr().out  # stored now: printed, not recomputed


# ------------------------------------------------------------------------------ the views
def _view_script(view: str, root: str) -> None:
    import importlib
    import sys

    if root not in sys.path:
        sys.path.insert(0, root)
    from dashboard.components.sidebar import run_picker

    run_picker()
    importlib.import_module(f"dashboard.views.{view}").render()


def _view(name: str):
    from streamlit.testing.v1 import AppTest

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return AppTest.from_function(_view_script, args=(name, str(ROOT)), default_timeout=120)


@pytest.fixture()
def two_runs(tiny_run_dir, tmp_path, monkeypatch):
    """A runs folder holding the tiny run (with its trust record) and an old copy without one."""
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run_dir, runs / "with-trust")
    _without_trust(Path(tiny_run_dir), runs / "old")
    monkeypatch.setenv("KDLENS_RUNS_DIR", str(runs))
    monkeypatch.setenv("KDLENS_THREADS", "1")
    return runs


def _pick(at, name):
    at.sidebar.selectbox[0].select(name).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_overview_shows_the_trust_curve_or_a_note(two_runs):
    at = open_section(_pick(_view("overview").run(), "with-trust"), "Where students stand in")
    assert "trust_curves" in [c.key for c in at.get("plotly_chart")] or any(
        "trust" in (c.proto.id or "") for c in at.get("plotly_chart"))
    texts = " ".join(m.value for m in at.markdown)
    assert "surest of" in texts or "No group" in texts
    table = next(d.value for d in at.dataframe if "stand-in score" in d.value.columns)
    assert set(table["student"]) == {"linear", "mlp", "linear-labels", "mlp-labels"}
    at = _pick(at, "old")
    assert any("no trust curve" in c.value for c in at.caption)
    assert any("python -m kdcore evaluate" in c.value for c in at.caption)


@pytest.mark.parametrize("run_name", ["with-trust", "old"])
def test_explain_shows_a_stand_in_badge_per_student(two_runs, run_name):
    at = _pick(_view("explain").run(), run_name)
    badges = [b.proto.body for b in at.get("badge")] if at.get("badge") else []
    markdown = " ".join(m.value for m in at.markdown) + " ".join(badges)
    if run_name == "with-trust":
        # every student has a badge: likely / unlikely stand-in, or (its class differs from the teacher's
        # on this text, which the page shows) "disagrees with the teacher here"
        assert markdown.count("stand-in") + markdown.count("disagrees with the teacher here") >= 4
        assert "p(agrees)" in markdown
    else:
        assert "stand-in" not in markdown
        assert any("no trust curve" in c.value for c in at.caption)


@pytest.mark.parametrize("run_name", ["with-trust", "old"])
def test_batch_sorts_and_filters_by_the_stand_in(two_runs, run_name):
    at = _pick(_view("batch").run(), run_name)
    at.radio(key="batch_source").set_value("An example file").run()
    assert not at.exception, [e.value for e in at.exception]
    results = next(d.value for d in at.dataframe if "text" in d.value.columns)
    if run_name == "old":
        assert not any("p(agrees)" in c for c in results.columns)
        return
    column = "linear p(agrees)"
    assert column in results.columns and "linear stand-in" in results.columns
    at.selectbox(key="batch_sort").set_value(column).run()
    shown = next(d.value for d in at.dataframe if "text" in d.value.columns)
    assert shown[column].is_monotonic_increasing
    at.toggle(key="batch_only_unlikely").set_value(True).run()
    shown = next(d.value for d in at.dataframe if "text" in d.value.columns)
    flags = shown[[c for c in shown.columns if c.endswith(" stand-in")]]
    assert (~flags.all(axis=1)).all()  # every row shown has an unlikely stand-in


def test_report_has_the_trust_section_or_a_note(two_runs):
    from kdcore.report import build_report, render_html
    from kdcore.runs import load_run

    with_trust = build_report(load_run(two_runs / "with-trust"), examples=[])
    page = render_html(with_trust)
    assert with_trust["trust"]["students"]["linear"]["score"] in T.SCORE_NAMES
    assert "Where each student stands in for the teacher" in page and "<polyline" in page
    assert "comprehensiveness_own_class" in page  # its definition says which class it explains
    old = build_report(load_run(two_runs / "old"), examples=[])
    assert old["trust"] is None
    assert "no trust curve" in render_html(old)


def _badges_script():
    from dashboard.components.trust_panel import stand_in_badges
    from kdcore.trust import StandIn

    stand_in_badges({"mlp": (StandIn("mlp", 3.0, 0.89, True, agrees=False),),
                     "linear": (StandIn("linear", 3.0, 0.89, True, agrees=True),)}, "runs/x", True)


def test_a_student_that_disagrees_on_screen_is_never_called_a_likely_stand_in():
    """p(agrees) is a prediction; where the teacher's answer is on the page, a student that gives another
    class is shown as disagreeing, not as a likely stand-in."""
    import sys

    from streamlit.testing.v1 import AppTest

    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    at = AppTest.from_function(_badges_script, default_timeout=60).run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "mlp: disagrees with the teacher here (its p(agrees) was 0.89)" in text
    assert "linear: likely stand-in · p(agrees) 0.89" in text and "mlp: likely" not in text


def test_choose_among_prefers_the_higher_dev_auroc_and_the_earlier_name_on_ties():
    from kdcore.trust import choose_among

    agree = [True, False, True, False]
    ranks, inverts = np.array([0.9, 0.1, 0.8, 0.2]), np.array([0.1, 0.9, 0.2, 0.8])
    assert choose_among({"a": inverts, "b": ranks}, agree, ("a", "b"))[0] == "b"
    assert choose_among({"a": ranks, "b": ranks}, agree, ("a", "b"))[0] == "a"
    assert choose_among({"a": ranks, "b": ranks}, agree, ("b", "a"))[0] == "b"
    name, aurocs = choose_among({"a": inverts, "b": ranks}, agree, ("a", "b"))
    assert aurocs == {"a": 0.0, "b": 1.0}
