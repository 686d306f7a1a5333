"""The CRF token student inside a run: configured from a StudentConfig, fitted by the build on the
teacher's word logits with one teacher word-feature cache (its twin on gold tags), saved and read back
with the run's teacher, read through its own decoder by the evaluation, and its transitions drawn in the
Weights view. The tiny token run of tests/conftest.py holds a ``crf`` student (at most 15 L-BFGS steps)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from conftest import make_toy_token_corpus, tiny_token_spec
from kdcore.config import DEFAULT_TOKEN_STUDENTS, TOKEN_CRF_STUDENT, DistillConfig, RunSpec, StudentConfig
from kdcore.pipeline.state import BuildState
from kdcore.runs import load_run
from kdcore.students import TokenCRFStudent, make_student
from kdcore.students.token_teacher_features import TokenTeacherCache
from kdcore.tasks.token.bio import is_valid_sequence
from kdcore.tasks.token.data import TokenDataset
from kdcore.tasks.token.metrics import decode, entity_scores, model_decode
from kdcore.tasks.token.teacher import split_rows


def test_token_crf_is_a_configurable_student_kind():
    config = StudentConfig(kind="token_crf", name="crf", teacher_terms="window+word", targets="marginals",
                           temperature=0.5, l2=0.01, max_iter=7, crf=False)
    student = make_student(config)
    assert isinstance(student, TokenCRFStudent) and student.config == config
    assert config.teacher_terms == "word+window"  # put in column order
    settings = student.settings
    assert (settings.crf, settings.terms, settings.targets, settings.temperature, settings.l2, settings.max_iter) == \
        (False, ["word", "window"], "marginals", 0.5, 0.01, 7)
    for bad, match in (({"teacher_terms": "word+embedding"}, "teacher_terms"), ({"targets": "gold"}, "targets"),
                       ({"temperature": 0}, "temperature")):
        with pytest.raises(ValueError, match=match):
            StudentConfig(kind="token_crf", **bad)


def test_the_default_token_students_hold_the_crf_of_the_best_dev_row():
    assert TOKEN_CRF_STUDENT in DEFAULT_TOKEN_STUDENTS
    assert [s.kind for s in RunSpec("ner", task="token").students] == ["token_linear", "token_mlp", "token_crf"]
    c = TOKEN_CRF_STUDENT
    assert (c.name, c.crf, c.teacher_terms, c.targets, c.l2, c.max_iter) == ("crf", True, "word+window", "path",
                                                                              1e-3, 60)


def test_a_crf_student_refuses_gold_mixed_into_distillation():
    with pytest.raises(ValueError, match="alpha"):
        RunSpec("ner", task="token", students=[TOKEN_CRF_STUDENT], distill=DistillConfig(alpha=0.5))


def _refit(run, config: StudentConfig) -> TokenCRFStudent:
    """The run's CRF fitted again from what the run stores: its transfer set and the teacher's logits on it."""
    rows = [json.loads(line) for line in (run.path / "data" / "transfer.jsonl").read_text().splitlines() if line]
    sentences = [row["tokens"] for row in rows]
    logits = split_rows(run.array("teacher_logits.npy"), [len(s) for s in sentences])
    return make_student(config).fit_sentences(sentences, teacher_logits=logits, label_names=run.label_names,
                                              teacher=run.teacher)


def test_the_run_saves_the_crf_and_reads_it_back_with_its_teacher(tiny_token_run_dir):
    run = load_run(tiny_token_run_dir)
    entry, twin = run.info.students["crf"], run.info.students["crf-labels"]
    assert entry.kind == twin.kind == "token_crf" and twin.twin_of == "crf" and twin.role != entry.role
    loaded = run.student("crf")
    assert isinstance(loaded, TokenCRFStudent) and run._teacher is None  # the teacher is loaded when needed
    test = run.split("test")
    tags = loaded.tag(test.sentences)  # test words were never scored in training: the run's teacher reads them
    assert all(is_valid_sequence(t) for t in tags)
    refitted = _refit(run, StudentConfig.from_dict(entry.config))  # the fit is deterministic
    assert refitted.tag(test.sentences) == tags
    for a, b in zip(refitted.predict_word_logits(test.sentences), loaded.predict_word_logits(test.sentences)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The evaluation read this very student: its entity agreement in metrics.json is the loaded one's.
    metrics = json.loads((Path(tiny_token_run_dir) / "metrics.json").read_text())
    teacher_tags = decode(split_rows(run.array("teacher_test_logits.npy"), [len(w) for w in test.sentences]),
                          run.label_names)
    assert metrics["models"]["crf"]["entity_agreement_f1"] == pytest.approx(entity_scores(teacher_tags, tags)["f1"])
    assert metrics["student_decoding"]["crf"] == "crf_viterbi" and metrics["student_decoding"]["linear"] == "bio_viterbi"
    assert "crf" in metrics["margins"]


def test_the_build_shares_one_word_cache_and_fits_the_twin_on_gold(tiny_token_model_dir, monkeypatch):
    from kdcore.tasks.token.fit import fit_student
    from kdcore.tasks.token.teacher import TokenTeacher

    corpus = make_toy_token_corpus(n_sentences=40)
    teacher = TokenTeacher.from_pretrained(tiny_token_model_dir, label_names=corpus.label_names, device="cpu")
    corpus = corpus.with_label_order(teacher.label_names)
    transfer = [list(s) for s in corpus.train.sentences]
    state = BuildState(corpus=corpus, device="cpu", teacher=teacher, transfer=transfer,
                       transfer_logits=teacher.predict_word_logits(transfer))
    calls = []
    original = TokenCRFStudent.fit_sentences

    def spy(self, sentences, teacher_logits=None, tags=None, **options):
        calls.append({"logits": teacher_logits is not None, "tags": tags, "teacher": options.get("teacher")})
        return original(self, sentences, teacher_logits=teacher_logits, tags=tags, **options)

    monkeypatch.setattr(TokenCRFStudent, "fit_sentences", spy)
    spec = RunSpec("t", task="token", students=[TOKEN_CRF_STUDENT])
    config = StudentConfig(kind="token_crf", name="crf", min_count=1, max_iter=5)
    distilled = fit_student(spec, state, config, distilled=True).student
    twin = fit_student(spec, state, config, distilled=False).student
    assert type(twin) is type(distilled) is TokenCRFStudent and twin.config == distilled.config
    assert calls[0]["logits"] and calls[0]["tags"] is None
    assert not calls[1]["logits"] and [list(t) for t in calls[1]["tags"]] == [list(t) for t in corpus.train.tags]
    assert isinstance(calls[0]["teacher"], TokenTeacherCache) and calls[1]["teacher"] is calls[0]["teacher"]
    assert len(state.caches["teacher_words"]) > 0  # each distinct word and window read once, for both


class _OwnDecoder:
    """A token model whose own decoder disagrees with the Viterbi over its per-word logits: the logits say
    ``B-per`` on every first word, its decoder says O everywhere."""

    decodes_itself = True
    label_names = ["O", "B-per", "I-per"]
    config = SimpleNamespace(kind="token_crf")
    name = "own"

    def predict_word_logits(self, sentences):
        return [np.tile([0.0, 0.0, -9.0], (len(s), 1)) + np.eye(len(s), 3, 1) * 5.0 for s in sentences]

    def tag(self, sentences):
        self.tagged = getattr(self, "tagged", 0) + 1
        return [["O"] * len(s) for s in sentences]

    def n_parameters(self):
        return 1


def test_the_evaluation_decodes_a_student_through_its_own_decoder():
    from kdcore.tasks.token.evaluate import evaluate_token_run

    names = ["O", "B-per", "I-per"]
    sentences = [["ann", "smiled"], ["bob", "left", "early"]]
    test = TokenDataset(sentences, [np.array([1, 0]), np.array([1, 0, 0])], names, name="t")
    student = _OwnDecoder()
    assert decode(student.predict_word_logits(sentences), names)[0][0] == "B-per"  # the two decodings differ
    assert model_decode(student, sentences) == [["O", "O"], ["O", "O", "O"]]
    teacher_logits = [np.eye(len(s), 3, 1) * 5.0 for s in sentences]  # the teacher: B-per on each first word
    teacher = SimpleNamespace(label_names=names, predict_word_logits=lambda s, use_cache=True: teacher_logits[:len(s)],
                              n_parameters=lambda: 1)
    metrics = evaluate_token_run(teacher, {"own": student}, test, teacher_test_logits=teacher_logits, n_boot=50)
    row = metrics["models"]["own"]
    assert student.tagged >= 1 and row["entity_agreement_f1"] == 0.0  # its decoder's all-O, not its logits' B-per
    assert metrics["student_decoding"] == {"own": "crf_viterbi"}


def test_word_and_feature_contributions_add_up_to_the_emission(tiny_token_run_dir):
    run = load_run(tiny_token_run_dir)
    student = run.student("crf")
    words = max(run.split("test").sentences, key=len)
    for position in range(min(len(words), 3)):
        for target in range(len(run.label_names)):
            per_word = student.word_contributions(words, position, target)
            terms = student.emission_terms(words, position, run.label_names[target])
            bias = float(terms.loc[terms["term"] == "bias", "contribution"].iloc[0])
            assert per_word.shape == (len(words),)
            assert per_word.sum() + bias == pytest.approx(terms["contribution"].sum(), abs=1e-4)
            outside = [k for k in range(len(words)) if abs(k - position) > 2]
            assert not per_word[outside].any()  # the window: the word and two words either side
            table = student.feature_contributions(words, position, target)
            assert table["score"].sum() == pytest.approx(per_word.sum(), abs=1e-4)
            assert set(table["word"]) <= set(range(position - 2, position + 3))


def test_global_importance_lists_window_and_teacher_terms(tiny_token_run_dir):
    from kdcore.tasks.token.analysis import top_features_by_type, transition_table

    run = load_run(tiny_token_run_dir)
    student = run.student("crf")
    table = top_features_by_type(student, run.split("test").sentences, "work", top=50)
    assert {"tag", "feature", "importance", "words"} <= set(table.columns)
    assert set(table["tag"]) <= {"B-work", "I-work"} and table["feature"].str.startswith("teacher(").any()
    transitions = transition_table(student)
    assert transitions.loc["O", "I-work"] == -np.inf and list(transitions.index[:1]) == ["<start>"]
    assert transition_table(run.student("linear")) is None


def test_the_transition_heatmap_escapes_tag_names():
    from dashboard.components.charts import transition_heatmap

    tags = ["O", "B-<b>x</b>", "I-<b>x</b>"]
    table = pd.DataFrame([[0.5, 1.0, -np.inf], [0.2, -0.3, 2.0], [0.1, 0.0, 1.5]], index=tags, columns=tags)
    figure = transition_heatmap(table, "Tag transitions of <i>crf</i>")
    heat = figure.data[0]
    assert "B-&lt;b&gt;x&lt;/b&gt;" in list(heat.x) and not any("<b>" in str(t) for t in (*heat.x, *heat.y))
    assert "<i>" not in figure.layout.title.text
    assert np.isnan(heat.z[0][2]) and heat.text[0][2] == "forbidden"


def test_the_weights_view_shows_the_crf_transition_matrix(tiny_token_run_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from test_dashboard import ROOT, TIMEOUT, _view_script, no_exceptions

    monkeypatch.setenv("KDLENS_RUNS_DIR", str(Path(tiny_token_run_dir).parent))
    monkeypatch.setenv("KDLENS_THREADS", "1")
    at = AppTest.from_function(_view_script, args=("weights", str(ROOT)), default_timeout=TIMEOUT).run()
    no_exceptions(at)
    assert "token_weights_transitions" not in [c.key for c in at.get("plotly_chart")]  # the linear student: none
    at.selectbox(key="token_weights_student").set_value("crf").run()
    no_exceptions(at)
    charts = {c.key: c for c in at.get("plotly_chart") if c.key}
    assert "token_weights_transitions" in charts
    spec = json.loads(charts["token_weights_transitions"].proto.spec)
    heat = spec["data"][0]
    assert heat["type"] == "heatmap" and heat["y"][0] == "&lt;start&gt;" and heat["x"][-1] == "&lt;end&gt;"
    assert any(t.startswith("teacher(") for df in at.dataframe for t in df.value.get("feature", []))


def test_a_resumed_build_hands_the_loaded_crf_its_teacher(tmp_path, tiny_token_model_dir):
    """Killed after the students were saved: the resumed build loads the CRF, whose saved word table lacks the
    test words, and evaluates it with the build's teacher."""
    from kdcore.pipeline import build_run
    from test_distill import Killed, _kill_at

    spec = tiny_token_spec("resume", tiny_token_model_dir, explain_sample=0)
    spec = RunSpec.from_dict({**spec.to_dict(), "students": [s.to_dict() for s in spec.students if s.kind == "token_crf"],
                              "teacher": {**spec.teacher.to_dict(), "epochs": 0.0}})
    corpus = make_toy_token_corpus(n_sentences=40)
    with pytest.raises(Killed):
        build_run(spec, runs_dir=tmp_path, corpus=corpus, progress=_kill_at("evaluate"))
    events = []
    path = build_run(spec, runs_dir=tmp_path, corpus=corpus, progress=events.append)
    assert "student_fit" not in [e["stage"] for e in events if "phase" not in e]  # work, not start / end
    metrics = json.loads((path / "metrics.json").read_text())
    assert 0 <= metrics["models"]["crf"]["entity_agreement_f1"] <= 1
