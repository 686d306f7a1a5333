"""The dashboard under Streamlit's AppTest, against the tiny run (KDLENS_RUNS_DIR).

The app routes with ``st.navigation`` over *function* pages, which ``AppTest.switch_page``
cannot select (it matches page files); so the entry file is tested as a whole (default
page, registered pages) and every view is run on its own with ``AppTest.from_function``
(the sidebar's run picker, then the view), which is what the entry file does per page.
"""

from __future__ import annotations

import html
import os
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from conftest import open_section, seen  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = ROOT / "dashboard" / "app.py"
TIMEOUT = 120
VIEWS = ("overview", "explain", "batch", "audit", "weights", "distill", "report")
INJECTION = '<script>alert("x")</script> a good film <img src=x onerror=alert(1)> but boring'


def _view_script(view: str, root: str) -> None:
    """One page as the entry file builds it: the sidebar's run picker, then the view."""
    import importlib
    import sys

    if root not in sys.path:
        sys.path.insert(0, root)
    from dashboard.components.sidebar import run_picker

    run_picker()
    importlib.import_module(f"dashboard.views.{view}").render()


@pytest.fixture(scope="module")
def runs_dir(tiny_run_dir):
    return Path(tiny_run_dir).parent


@pytest.fixture()
def app_env(runs_dir, monkeypatch):
    monkeypatch.setenv("KDLENS_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("KDLENS_THREADS", "1")
    return runs_dir


def view(name: str) -> AppTest:
    return AppTest.from_function(_view_script, args=(name, str(ROOT)), default_timeout=TIMEOUT)


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def html_of(at: AppTest) -> str:
    return "\n".join(h.proto.body for h in at.get("html"))


# ----------------------------------------------------------------------------- the entry file
def test_app_shows_overview_and_registers_every_page(app_env, tiny_run_dir):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    no_exceptions(at)
    assert any(Path(tiny_run_dir).name in t.value for t in at.title)
    titles = sorted(info["page_name"] for info in at._registered_pages.values())
    assert titles == sorted(["Overview", "Explain", "Batch", "Audit", "Weights", "Distill", "Report"])
    # The sidebar picked the tiny run, and the model card lists the teacher and every student.
    assert at.sidebar.selectbox[0].value == Path(tiny_run_dir).name
    card = at.dataframe[0].value
    assert {"teacher", "linear", "mlp", "linear-labels", "mlp-labels"} <= set(card["model"])


def test_the_first_page_loads_without_torch(app_env, tiny_run_dir):
    """The Overview (the default page) draws the model card from the run's files: no torch, no model loaded.
    In a fresh interpreter, so modules other tests imported do not count."""
    import subprocess
    import sys

    probe = ("import sys; from streamlit.testing.v1 import AppTest; "
             f"at = AppTest.from_file({str(APP)!r}, default_timeout={TIMEOUT}).run(); "
             "assert not at.exception, [e.value for e in at.exception]; "
             "assert at.dataframe, 'no model card'; "
             "print('loaded:', sorted(m for m in ('torch', 'transformers', 'captum') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loaded: []" in done.stdout, done.stdout


def test_app_without_runs_says_how_to_build_one(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLENS_RUNS_DIR", str(tmp_path / "empty"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    no_exceptions(at)
    assert any("python -m kdcore demo" in i.value for i in at.info)
    assert [b.label for b in at.button] == ["Build the demo run"]


def test_overview_shows_explanation_metrics_when_the_run_has_them(tiny_run_dir, tmp_path, monkeypatch):
    import shutil

    from kdcore.explain_metrics import evaluate_explanations, summary_table
    from kdcore.runs import load_run, update_run_metrics

    copy = tmp_path / "runs" / "with-explanations"
    shutil.copytree(tiny_run_dir, copy)
    run = load_run(copy)
    frame = evaluate_explanations(run.teacher, run.students, run.split("test").texts[:2],
                                  methods=("gradient_x_input",))
    update_run_metrics(run, {**run.metrics, "explanations": {
        "sample_size": 2, "methods": ["gradient_x_input"], "summary": summary_table(frame).to_dict(orient="records")}})
    monkeypatch.setenv("KDLENS_RUNS_DIR", str(copy.parent))
    at = view("overview").run()
    no_exceptions(at)
    card = at.dataframe[0].value
    assert {"agreement (Spearman)", "comprehensiveness"} <= set(card.columns)
    assert card.loc[card["model"] == "teacher", "agreement (Spearman)"].isna().all()  # no agreement with itself
    assert card.loc[card["model"] == "linear", "comprehensiveness"].notna().all()
    assert not any("Not computed" in c.value for c in at.caption)
    # each agreement and faithfulness mean has its bootstrap interval beside it
    tables = [d.value for d in at.dataframe]
    assert any("spearman 95% CI" in t.columns and t["spearman 95% CI"].str.contains("–").any() for t in tables)


def test_overview_shows_intervals_and_twin_margins(app_env):
    at = view("overview").run()
    no_exceptions(at)
    card = at.dataframe[0].value
    assert {"accuracy 95% CI", "fidelity 95% CI", "macro_f1 95% CI"} <= set(card.columns)
    assert card.loc[card["model"] == "linear", "fidelity 95% CI"].str.match(r"\d\.\d{3}–\d\.\d{3}").all()
    twins = at.dataframe[1].value
    assert {"fidelity margin", "margin 95% CI"} <= set(twins.columns)
    assert any("95% intervals on" in c.value for c in at.caption)


def test_overview_draws_its_card_first_and_each_section_when_opened(app_env):
    """The first load draws the model card and the first section (tables only), no chart: a chart's library would
    hold the card back in the browser. Each other section is drawn when its tab is picked, and only then."""
    from dashboard.views.overview import SEQUENCE_SECTIONS

    at = view("overview").run()
    no_exceptions(at)
    assert "model" in at.dataframe[0].value.columns
    assert [t.label for t in at.tabs][:len(SEQUENCE_SECTIONS)] == list(SEQUENCE_SECTIONS)
    assert not at.get("plotly_chart")
    assert any(s.value == "Explanation agreement and faithfulness" for s in at.subheader)
    headings = {"Charts": None, "Where students stand in": "Where each student stands in for the teacher",
                "Where they stand in worst": "Where each student stands in worst",
                "Confusion matrices": "Confusion matrices",
                "Provenance": "Provenance: data and weight hashes, versions, configurations"}
    for label, heading in headings.items():
        at = open_section(at, label)
        no_exceptions(at)
        shown = [s.value for s in at.subheader]
        assert "Explanation agreement and faithfulness" not in shown  # the first section closed
        if heading is not None:
            assert heading in shown, (label, shown)
    at = open_section(at, "Charts")
    assert at.get("plotly_chart")  # the metric bars (and the size and speed scatter)
    assert "model" in at.dataframe[0].value.columns  # the card stays above every section


def test_overview_of_an_unlabelled_run_says_no_gold_labels(tiny_run_dir, tmp_path, monkeypatch):
    import json
    import shutil

    from kdcore.runs import load_run, update_run_metrics

    copy = tmp_path / "runs" / "unlabelled"
    shutil.copytree(tiny_run_dir, copy)
    run = load_run(copy)
    metrics = json.loads(json.dumps(run.metrics))
    metrics["gold_labels"] = False
    for entry in metrics["models"].values():
        for key in ("accuracy", "accuracy_ci", "macro_f1", "macro_f1_ci", "per_class", "confusion_matrix"):
            entry.pop(key, None)
    update_run_metrics(run, metrics)
    monkeypatch.setenv("KDLENS_RUNS_DIR", str(copy.parent))
    at = view("overview").run()
    no_exceptions(at)
    card = at.dataframe[0].value
    assert set(card["accuracy"]) == {"no gold labels"} and card["fidelity"].notna().all()
    assert any("no gold labels" in i.value for i in at.info)
    assert at.metric[0].value == "no gold labels"


def test_demo_build_progress_is_polled(tmp_path, monkeypatch):
    import dataclasses
    import json
    import subprocess

    from dashboard import jobs

    runs = tmp_path / "runs"
    folder = jobs.jobs_dir(runs)
    folder.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "60"])  # stands in for a running `python -m kdcore demo`
    try:
        progress = folder / "demo.progress.jsonl"
        progress.write_text(json.dumps({"stage": "teacher_fit", "step": 40, "total": 100, "loss": 0.4}) + "\n")
        job = jobs.Job(name="demo", kind="demo", pid=sleeper.pid, started_at=time.time(), command=[],
                       progress_file=str(progress), log_file=str(folder / "demo.log"))
        (folder / "demo.progress.job.json").write_text(json.dumps(dataclasses.asdict(job)))
        monkeypatch.setenv("KDLENS_RUNS_DIR", str(runs))
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
        no_exceptions(at)
        bars = at.get("progress")
        assert bars and bars[0].value == 22  # 40% of the teacher stage, which is 55% of the build
        assert "fine-tuning the teacher" in bars[0].proto.text
        assert at.button(key="kdlens_build_demo").disabled
    finally:
        sleeper.kill()
        sleeper.wait()


# ----------------------------------------------------------------------------- every view
@pytest.mark.parametrize("name", VIEWS)
def test_every_view_runs(app_env, name):
    at = view(name).run()
    no_exceptions(at)
    errors = [seen(e.value) for e in at.error]
    if name == "distill":
        # Its checks run before anything starts: the tiny run's teacher (neg / pos) against the default
        # corpus (fresh / rotten) is refused, naming both class sets.
        assert len(errors) == 1 and "[neg, pos]" in errors[0] and "--label-map" in errors[0], errors
    else:
        assert not errors, errors
    assert at.title, f"the {name} view shows no title"


def test_distill_checks_labels_before_starting(app_env, tmp_path):
    """The label checks and the teacher's classes, shown before Start; a mismatch can be mapped in the form."""
    at = view("distill").run()
    at.radio(key="distill_data_kind").set_value("Upload a file")
    at.run()
    at.file_uploader(key="distill_upload").upload("small.csv", SMALL_CSV.replace(b",pos", b",great")
                                                  .replace(b",neg", b",awful"), "text/csv")
    at.run()
    no_exceptions(at)
    assert not (app_env / ".uploads").exists() or not list((app_env / ".uploads").iterdir())  # picked: not written
    assert any("[neg, pos]" in seen(e.value) and "[awful, great]" in seen(e.value) for e in at.error)
    at.button(key="distill_start").click()
    at.run()
    assert any("fix it, then start again" in e.value for e in at.error)
    from dashboard import jobs

    assert not jobs.list_jobs(app_env) or all(j.name != at.text_input(key="distill_name").value
                                               for j in jobs.list_jobs(app_env))
    at.text_input(key="distill_label_map").set_value("neg=awful,pos=great")
    at.run()
    no_exceptions(at)
    assert not at.error, [e.value for e in at.error]
    assert any("through the label map: neg→awful, pos→great" in seen(i.value) for i in at.info)
    assert any("Training rows per class" in c.value for c in at.caption)


def test_explain_highlights_every_model_and_escapes_html(app_env):
    at = view("explain").run()
    at.text_area(key="explain_text").set_value(INJECTION)
    at.run()
    no_exceptions(at)
    body = html_of(at)
    for model in ("teacher", "linear", "linear-labels", "mlp", "mlp-labels"):
        assert f">{model}</td>" in body
    assert body.count('class="kdl-row"') == 5
    assert body.count('class="kdl-word"') >= 5 * 8  # every model colours the same words
    assert "<script" not in body and "<img" not in body
    assert "&lt;" in body and "&gt;" in body
    # With the markup removed and entities decoded, every row reads as the original text.
    assert html.unescape(re.sub(r"<[^>]+>", "", body)).count(INJECTION) == 5
    # Agreement of every student with the teacher, from kdcore.explain_metrics.
    agreement = next(d.value for d in at.dataframe if "student" in d.value.columns)
    assert sorted(agreement["student"]) == ["linear", "linear-labels", "mlp", "mlp-labels"]
    assert "spearman" in agreement.columns


@pytest.mark.parametrize("method", ["gradient_x_input", "occlusion", "lime"])
def test_explain_other_methods(app_env, method):
    at = view("explain").run()
    at.selectbox(key="explain_method").set_value(method)
    if method == "lime":
        at.run()
        at.number_input(key="explain_n_samples_lime").set_value(30)
    at.run()
    no_exceptions(at)
    assert html_of(at).count('class="kdl-row"') == 5


def test_explain_long_text_notice(app_env):
    at = view("explain").run()
    # The tiny teacher's window is 32 tokens: this text needs several windows.
    at.text_area(key="explain_text").set_value(" ".join(["a good film but a boring plot"] * 12))
    at.selectbox(key="explain_method").set_value("gradient_x_input")
    at.run()
    no_exceptions(at)
    assert any("window by window" in i.value for i in at.info)


def test_sessions_do_not_share_texts(app_env):
    first, second = view("explain").run(), view("explain").run()
    first.text_area(key="explain_text").set_value("a good film")
    second.text_area(key="explain_text").set_value("a boring plot")
    first.selectbox(key="explain_method").set_value("gradient_x_input")
    second.selectbox(key="explain_method").set_value("gradient_x_input")
    first.run()
    second.run()
    first.run()
    assert "boring" not in html_of(first) and "good" in html_of(first)
    assert "good" not in html_of(second) and "boring" in html_of(second)


def test_weights_compares_student_and_teacher(app_env):
    at = view("weights").run()
    no_exceptions(at)
    assert not at.get("metric")  # the teacher's attributions are computed only on request
    at.selectbox(key="weights_method").set_value("gradient_x_input")
    at.button(key="weights_compare_button").click()
    at.run()
    no_exceptions(at)
    assert [m.label for m in at.get("metric")] == ["Spearman rank correlation"]
    at.text_input(key="weights_search").set_value("film")
    at.run()
    hits = next(d.value for d in at.dataframe if "feature" in d.value.columns)
    assert hits["feature"].iloc[0] == "film" and hits["feature"].str.contains("film").all()


# ----------------------------------------------------------------------------- batch uploads
GOOD_CSV = b"review,sentiment\na good film,pos\nboring and dull,neg\nfun and charming,pos\n"


def test_batch_scores_an_upload_and_explains_a_row(app_env):
    at = view("batch").run()
    at.file_uploader(key="batch_upload").upload("reviews.csv", GOOD_CSV, "text/csv")
    at.run()
    no_exceptions(at)
    assert not at.error, [e.value for e in at.error]
    results = next(d.value for d in at.dataframe if "text" in d.value.columns)
    assert len(results) == 3
    assert {"teacher", "linear", "mlp", "linear-labels", "mlp-labels", "gold", "agreement",
            "disagreement"} <= set(results.columns)
    assert set(results["gold"]) == {"pos", "neg"}
    summary = next(d.value for d in at.dataframe if "fidelity" in d.value.columns)
    assert summary.loc[summary["model"] == "teacher", "fidelity"].item() == 1.0
    assert "accuracy" in summary.columns  # the file's labels are the run's classes
    assert at.get("download_button"), "no CSV download"
    at.selectbox(key="batch_row").set_value(2)
    at.selectbox(key="batch_method").set_value("gradient_x_input")
    at.run()
    no_exceptions(at)
    body = html_of(at)
    assert body.count('class="kdl-row"') == 5 and "dull" in body


def test_batch_long_text_gets_the_window_notice_and_its_explanation(app_env):
    long_text = " ".join(["a good film but a boring plot"] * 12)  # several of the tiny teacher's 32-token windows
    payload = f"review,sentiment\na good film,pos\n\"{long_text}\",neg\n".encode()
    at = view("batch").run()
    at.file_uploader(key="batch_upload").upload("long.csv", payload, "text/csv")
    at.run()
    no_exceptions(at)
    results = next(d.value for d in at.dataframe if "text" in d.value.columns)
    assert results["teacher windows"].tolist()[0] == 1 and results["teacher windows"].tolist()[1] > 1
    assert any("longer than the teacher's window" in i.value and "rows 2" in i.value for i in at.info)
    at.selectbox(key="batch_row").set_value(2)
    at.selectbox(key="batch_method").set_value("integrated_gradients")
    at.run()
    no_exceptions(at)
    assert any("window by window" in i.value for i in at.info)
    assert html_of(at).count('class="kdl-row"') == 5


@pytest.mark.parametrize("filename, payload, fragment", [
    ("binary.csv", b"text\n\x00\x01\x02\x89PNG\x00\x00", "binary"),
    ("latin1.csv", "text,label\ncaf\xe9 cr\xe8me,pos\n".encode("cp1252"), "UTF-8"),
    ("columns.csv", b"foo,bar\n1,2\n3,4\n", "no text column"),
    ("records.jsonl", b'{"review": "ok"}\n{not json\n', "line 2"),
    ("zipped.csv", b"PK\x03\x04" + b"\x00" * 40, "ZIP"),
])
def test_batch_bad_upload_shows_error_not_exception(app_env, filename, payload, fragment):
    at = view("batch").run()
    at.file_uploader(key="batch_upload").upload(filename, payload, "application/octet-stream")
    at.run()
    no_exceptions(at)
    assert at.error, "a bad file must show an st.error"
    message = " ".join(e.value for e in at.error)
    assert fragment.lower() in message.lower(), message
    # The session goes on: a good file afterwards is scored.
    at.file_uploader(key="batch_upload").set_value(("good.csv", GOOD_CSV, "text/csv"))
    at.run()
    no_exceptions(at)
    assert not at.error


def test_upload_limit_is_enforced_before_reading():
    from dashboard.components import upload
    from kdcore.data import DataError

    assert upload.check_size(2 * 1024 * 1024, limit_mb=1) is not None
    assert upload.check_size(1024, limit_mb=1) is None
    with pytest.raises(DataError, match="upload limit"):
        upload.read_upload(b"text\n" + b"x" * (2 * 1024 * 1024), "big.csv", limit_mb=1)


def test_peek_columns():
    from dashboard.components import upload

    assert upload.peek_columns(b"text;label\na;b\n", "x.csv") == ["text", "label"]
    assert upload.peek_columns(b'{"review": "a", "y": 1}\n', "x.jsonl") == ["review", "y"]
    assert upload.peek_columns(b"\xff\xfe\x00", "x.csv") == []


# ----------------------------------------------------------------------------- distill and jobs
def test_distill_refuses_a_name_outside_the_runs_folder(app_env):
    at = view("distill").run()
    # A text run trains the augmented student by default, as `distill --data` does.
    assert at.multiselect(key="distill_students").value == ["linear", "mlp", "aug_linear"]
    at.text_input(key="distill_name").set_value("../escape")
    at.button(key="distill_start").click()
    at.run()
    no_exceptions(at)
    assert any("not allowed" in e.value for e in at.error)
    from dashboard import jobs

    assert jobs.find_job(app_env, "escape") is None


SMALL_CSV = ("text,label\n" + "".join(f"a good fun film {i},pos\n" for i in range(12))
             + "".join(f"a dull boring plot {i},neg\n" for i in range(12))).encode("utf-8")


def _start_distill(at: AppTest, name: str, teacher: str) -> AppTest:
    at.text_input(key="distill_name").set_value(name)
    at.radio(key="distill_teacher_kind").set_value("A local folder")
    at.radio(key="distill_data_kind").set_value("Upload a file")
    at.run()
    at.text_input(key="distill_teacher_dir").set_value(teacher)
    at.file_uploader(key="distill_upload").upload("small.csv", SMALL_CSV, "text/csv")
    at.number_input(key="distill_augment").set_value(0)
    at.number_input(key="distill_student_steps").set_value(2)
    at.button(key="distill_start").click()
    return at.run()


def test_distill_view_builds_a_run_in_the_background(tiny_run_dir, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("KDLENS_RUNS_DIR", str(runs))
    monkeypatch.setenv("KDLENS_THREADS", "1")
    good = _start_distill(view("distill").run(), "fresh", str(Path(tiny_run_dir) / "teacher"))
    no_exceptions(good)
    assert any("Started" in m.value for m in good.success), [e.value for e in good.error]
    bad = _start_distill(view("distill").run(), "broken", str(tmp_path / "no-teacher-here"))
    assert any("Started" in m.value for m in bad.success), [e.value for e in bad.error]
    # Each job reads its own copy of the upload (and removes it when it ends).
    assert {p.name.split("-")[0] for p in (runs / ".uploads").glob("*.csv")} <= {"fresh", "broken"}
    from kdcore.config import RunSpec

    spec = RunSpec.from_json((runs / ".specs" / "fresh.json").read_text(encoding="utf-8"))  # what the job builds
    assert spec.name == "fresh" and spec.data.path.endswith(".csv") and spec.distill.augment_copies == 0
    assert all(s.max_steps == 2 for s in spec.students)

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        good.run()
        if any("is ready" in m.value for m in good.success):
            break
        time.sleep(1)
    no_exceptions(good)
    assert any("is ready" in m.value for m in good.success), [e.value for e in good.error]
    assert (runs / "fresh" / "manifest.json").is_file()
    good.button(key="distill_open_fresh").click()
    good.run()
    assert good.sidebar.selectbox(key="kdlens_run_choice").value == "fresh"  # the new run, in the picker

    # The job with a missing teacher fails with its reason, and creates no run.
    while time.monotonic() < deadline:
        bad.selectbox(key="distill_job").set_value("broken")
        bad.run()
        if bad.error:
            break
        time.sleep(1)
    assert any("broken failed" in e.value and "no-teacher-here" in e.value for e in bad.error), \
        [e.value for e in bad.error]
    assert not (runs / "broken").exists()
    while list((runs / ".uploads").iterdir()) and time.monotonic() < deadline + 30:
        time.sleep(0.5)  # a job removes its upload as its process exits, just after its last progress event
    assert not list((runs / ".uploads").iterdir())  # both jobs ended: no upload is left behind
    # The same name again is refused before anything starts.
    again = _start_distill(view("distill").run(), "fresh", str(Path(tiny_run_dir) / "teacher"))
    assert any("already exists" in e.value for e in again.error)


def test_job_failure_is_reported_with_its_log(tmp_path):
    from dashboard import jobs

    job = jobs.start_job(tmp_path, "distill", "broken", ["no-such-command"])
    deadline = time.monotonic() + 60
    while jobs.job_status(job)[0] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    status, message = jobs.job_status(job)
    assert status == "error"
    assert "invalid choice" in message
    # The job file lets any session find it; a second start of a finished job is allowed.
    assert jobs.find_job(tmp_path, "broken").pid == job.pid
    with pytest.raises(ValueError, match="not allowed"):
        jobs.start_job(tmp_path, "distill", "../x", ["distill"])


def test_progress_events_and_fraction(tmp_path):
    from dashboard import jobs

    progress = tmp_path / "p.jsonl"
    progress.write_text('{"stage": "teacher_fit", "step": 50, "total": 100, "loss": 0.5}\n{"stage": "stud',
                        encoding="utf-8")
    job = jobs.Job(name="x", kind="distill", pid=os.getpid(), started_at=0.0, command=[],
                   progress_file=str(progress), log_file=str(tmp_path / "log"))
    events = jobs.read_events(job)
    assert events == [{"stage": "teacher_fit", "step": 50, "total": 100, "loss": 0.5}]
    assert 0.2 < jobs.stage_fraction(events) < 0.35
    assert jobs.stage_fraction([{"stage": "done", "path": "p"}]) == 1.0
    progress.write_text('{"stage": "error", "message": "no teacher at /x"}\n', encoding="utf-8")
    assert jobs.job_status(job) == ("error", "no teacher at /x")


def test_distill_spec():
    from dashboard.views.distill import build_spec

    spec = build_spec("r1", "/t", True, Path("/d.csv"), "review", None, ["linear"], "kd_mse", 2.0, 0.5, 1, 3, 1.5)
    assert spec.name == "r1" and spec.teacher_source == "/t" and spec.teacher_is_encoder
    assert spec.data.path == "/d.csv" and spec.data.text_column == "review" and spec.data.label_column is None
    assert spec.distill.loss == "kd_mse" and spec.distill.alpha == 0.5 and spec.teacher.epochs == 1.5
    assert [s.kind for s in spec.students] == ["linear"]
    # A bare encoder left untrained would be distilled from a random head: refused with the fix.
    with pytest.raises(ValueError, match="needs fine-tuning"):
        build_spec("r1", "/t", True, None, None, None, ["linear"], "kd_kl", 0.5, 0.0, 1, 3, 0.0)


# ----------------------------------------------------------------------------- components
def test_heatmap_escapes_and_colours_by_sign():
    import numpy as np

    from dashboard.components import heatmap
    from kdcore.explanation import Explanation

    text = 'good <b onerror="x">bad</b>'
    expl = Explanation(text=text, words=["good", "bad"], spans=[(0, 4), (20, 23)], scores=np.array([1.0, -0.5]),
                       target=1, probs=np.array([0.3, 0.7]), method="m", model_name="m", label_names=["neg", "pos"])
    out = heatmap.highlight(expl)
    assert "<b " not in out and "&lt;b onerror=&quot;x&quot;&gt;" in out
    assert "rgba(214,39,40,0.800)" in out  # the largest positive score: full red
    assert "rgba(31,119,180,0.400)" in out  # half the largest |score|, negative: half blue
    table = heatmap.highlight_table({"<i>m</i>": expl})
    assert "&lt;i&gt;m&lt;/i&gt;" in table and "0.700" in table


def test_explain_draws_the_teachers_convergence_delta_and_reuses_its_explanation(app_env):
    """The teacher's IG (n_steps 'auto' by default) ends with its convergence delta shown; the same text again
    draws the same page (the teacher's explanation from its store)."""
    at = view("explain").run()
    at.text_area(key="explain_text").set_value(" ".join(["a good film but a boring plot"] * 12))
    at.run()
    no_exceptions(at)
    assert at.select_slider(key="explain_n_steps").value == "auto"
    captions = [c.value for c in at.caption if "convergence delta" in c.value]
    assert len(captions) == 1 and "n_steps auto" in captions[0]
    assert any("chosen automatically" in c.value for c in at.caption)
    body = html_of(at)
    assert body.count('class="kdl-row"') == 5
    at.run()
    assert html_of(at) == body
