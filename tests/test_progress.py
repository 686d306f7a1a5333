"""Every stage of a build shows its progress: a start and an end event for each pipeline stage and each of the
evaluation's sub-steps (model metrics, bootstrap intervals, trust curves), with counts, read the same way by the
CLI's bars and the Distill view's tracker."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import make_toy_corpus, tiny_spec
from kdcore.config import StudentConfig
from kdcore.pipeline import build_run
from kdcore.pipeline.stages import STAGE_EVENTS
from kdcore.records import STAGE_LABELS, STAGES, ProgressEvent

STUDENTS = (StudentConfig(kind="linear", name="linear", min_count=1, max_steps=5),
            StudentConfig(kind="aug_linear", name="aug", min_count=1))


@pytest.fixture(scope="module")
def events(tiny_model_dir, tmp_path_factory):
    seen: list[dict] = []
    spec = replace(tiny_spec("progress", tiny_model_dir, STUDENTS), explain_sample=2,
                   explain_methods=("gradient_x_input",))
    build_run(spec, runs_dir=tmp_path_factory.mktemp("runs"), progress=seen.append, corpus=make_toy_corpus())
    return seen


def _phases(events, stage):
    return [i for i, e in enumerate(events) if e.get("stage") == stage and e.get("phase") in ("start", "end")]


def test_every_stage_and_sub_step_starts_and_ends(events):
    assert {e["stage"] for e in events} <= set(STAGES)  # the tracker and the bars know every stage named
    spans = {}
    for stage in (*STAGE_EVENTS.values(), "evaluate_intervals", "trust"):
        marks = _phases(events, stage)
        assert [events[i]["phase"] for i in marks] == ["start", "end"], (stage, [events[i] for i in marks])
        spans[stage] = marks
    order = [spans[stage] for stage in STAGE_EVENTS.values()]
    assert all(a[1] < b[0] for a, b in zip(order, order[1:]))  # one after the other, in pipeline order
    evaluation = spans["evaluate"]
    for sub in ("evaluate_intervals", "trust"):  # inside the evaluation, not after it
        assert evaluation[0] < spans[sub][0] < spans[sub][1] < evaluation[1]


def _counts(events, stage):
    return [(e["done"], e["total"]) for e in events if e.get("stage") == stage and e.get("total") and "done" in e]


def test_the_evaluation_sub_steps_count_what_they_did(events):
    models = _counts(events, "evaluate")  # the teacher, two students, their two twins
    assert models[0] == (0, 5) and models[-1] == (5, 5) and [d for d, _ in models] == sorted(d for d, _ in models)
    assert _counts(events, "evaluate_intervals")[-1] == (2, 2)  # one paired bootstrap per distilled student
    students = [e for e in events if e.get("stage") == "trust" and e.get("student")]
    assert [(e["done"], e["total"]) for e in students] == [(i, 4) for i in range(1, 5)]
    assert any(e.get("part") == "teacher" for e in events if e.get("stage") == "trust")  # the teacher on dev
    assert _counts(events, "explain_eval")[-1] == (2, 2)
    ngrams = _counts(events, "ngram_features")  # the aug student's pass over its n-grams
    assert ngrams and all(done <= total for done, total in ngrams)
    assert any(done == total for done, total in ngrams)


class _Bar:
    def __init__(self, total=None, desc="", **_):
        self.total, self.desc, self.n, self.closed, self.postfix = total, desc, 0, False, {}

    def set_postfix(self, postfix, refresh=False):
        self.postfix = dict(postfix)

    def refresh(self):
        pass

    def close(self):
        self.closed = True


def test_the_cli_bars_show_every_sub_step(events):
    from kdcore.cli import TqdmProgress

    bars: list[_Bar] = []
    progress = TqdmProgress()
    progress._tqdm = lambda **options: bars.append(_Bar(**options)) or bars[-1]
    for event in events:
        progress(event)
    progress.close()
    shown = [b.desc for b in bars]
    for stage in ("evaluate", "evaluate_intervals", "trust", "explain_eval", "ngram_features"):
        assert STAGE_LABELS[stage] in shown, (stage, shown)
    trust = [b for b in bars if b.desc == STAGE_LABELS["trust"] and b.total == 4]
    assert trust and trust[-1].n == 4 and trust[-1].closed  # ended whole
    assert all(b.closed for b in bars)


def test_the_distill_tracker_names_the_sub_step_and_never_goes_back(events, tmp_path, monkeypatch):
    import json
    import os

    from dashboard import jobs

    fractions = [jobs.stage_fraction(events[: i + 1]) for i in range(len(events))]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    at_trust = next(e for e in events if e.get("stage") == "trust" and e.get("student"))
    assert ProgressEvent.from_dict(at_trust).text.startswith(STAGE_LABELS["trust"] + " 1/4")
    # what the view shows while a job runs: the last event's stage, count and model, from the progress file
    cut = events.index(at_trust) + 1
    progress_file = tmp_path / "progress.jsonl"
    progress_file.write_text("".join(json.dumps(e) + "\n" for e in events[:cut]), encoding="utf-8")
    job = jobs.Job(name="progress", kind="distill", pid=os.getpid(), started_at=0.0, command=[],
                   progress_file=str(progress_file), log_file=str(tmp_path / "log"))
    status, message = jobs.job_status(job)
    assert status == "running" and "trust curves" in message and "1/4" in message and at_trust["student"] in message
