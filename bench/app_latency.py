"""Dashboard latency, where users wait: a short text and a long one in Explain, and the first page load.

Measured on this machine's CPU, each figure in seconds and as a ratio against a baseline taken in
the same run (so a loaded machine shows in both):

(a) a new 64-word text in Explain: time to every model's prediction and highlights, through the
    page's real path (Streamlit's AppTest runs the page script in-process, exactly as the server
    runs it, without the browser's drawing), against ``explain_many()`` called straight on the
    same models and options;
(b) a new ~1,500-word text: time to the first full render (every prediction, every student's
    attribution) and to the teacher's integrated gradients complete (the page draws them in that
    order), against the students' and the teacher's ``explain()`` called straight;
(c) the first page load: ``dashboard/app.py``'s default page in a fresh interpreter (AppTest), the
    Explain page's first run with the models, and with ``--browser`` a real browser (headless
    Chromium) from the server's start to the first page drawn.

Runs on the demo run (``--run``, else runs/demo or $KDLENS_RUNS_DIR/demo); with none, on a tiny
random-weight run built on the spot, which says nothing about real model speed (the output says so).

    python bench/app_latency.py [--run PATH] [--repeats 3] [--words 1500] [--browser]
    python bench/app_latency.py --browser-against /tmp/old [--loads 6]   # first page, this app vs another checkout's

Targets (2 idle cores): 64-word text <= 1.5 s; 1,500-word first render <= 2 s, teacher's IG <= 10 s;
first page load <= 3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TARGETS = {"short": 1.5, "first_render": 2.0, "teacher": 10.0, "first_load": 3.0}
TEXT_64 = (
    "The first half of this film is a quiet, careful portrait of a family that has stopped talking, and the "
    "actors make every silence count. Then the plot takes over: a kidnapping, a chase, a twist you can see "
    "coming from the opening credits. It never becomes boring, but the charm of those early scenes is gone, "
    "and the ending feels rushed and cheap."
)
VARIANTS = ("", " Still worth seeing.", " Honestly, skip it.", " A mixed bag.", " Go anyway.")


def long_review(words: int, tag: str = "") -> str:
    """A review of about ``words`` words: the 64-word text's sentences, numbered so no two repeat."""
    sentences = [s.strip() + "." for s in TEXT_64.split(".") if s.strip()]
    out, count, i = [], 0, 0
    while count < words:
        sentence = sentences[i % len(sentences)]
        sentence = f"In scene {i + 1}{tag}, " + sentence[0].lower() + sentence[1:]
        out.append(sentence)
        count += len(sentence.split())
        i += 1
    return " ".join(out)


def _view_script(view: str, root: str) -> None:
    import importlib
    import sys

    if root not in sys.path:
        sys.path.insert(0, root)
    from dashboard.components.sidebar import run_picker

    run_picker()
    importlib.import_module(f"dashboard.views.{view}").render()


def _tiny_run(folder: Path) -> Path:
    """A tiny random BERT teacher and students (the test fixtures' recipe)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import make_tiny_model_dir, make_toy_corpus, tiny_spec

    from kdcore.config import StudentConfig
    from kdcore.pipeline import build_run

    students = (StudentConfig(kind="linear", name="linear", min_count=1, max_steps=20),
                StudentConfig(kind="mlp", name="mlp", min_count=1, max_steps=20, hidden_size=8))
    spec = tiny_spec("tiny", make_tiny_model_dir(folder / "tiny_bert"), students)
    return build_run(spec, runs_dir=folder / "runs", corpus=make_toy_corpus())


def _find_run(explicit: str | None) -> tuple[Path | None, str]:
    if explicit:
        return Path(explicit), f"run {explicit}"
    env = os.environ.get("KDLENS_RUNS_DIR")
    for folder in ([Path(env)] if env else []) + [ROOT / "runs"]:
        if (folder / "demo" / "manifest.json").is_file():
            return folder / "demo", f"demo run {folder / 'demo'}"
    return None, ""


def _line(label: str, seconds: float, baseline: float | None, target: str | None) -> str:
    parts = [f"  {label}: {seconds:7.2f} s"]
    if baseline:
        parts.append(f"{seconds / baseline:5.2f}x the baseline ({baseline:.2f} s)")
    if target:
        limit = TARGETS[target]
        parts.append(f"target {limit:g} s on 2 idle cores: {seconds / limit:.2f}x")
    return ", ".join(parts)


class Marks:
    """Times at which the Explain page reached its stages, recorded by wrapping the page's call for the
    teacher's explanation (the students' table is drawn just before it, the full table just after)."""

    def __init__(self):
        from dashboard import state

        self.state, self.original = state, state.teacher_explanation
        self.stamps: list[tuple[str, float]] = []
        state.teacher_explanation = self._timed

    def _timed(self, key, text, method, *args, **kwargs):
        self.stamps.append(("students", time.perf_counter()))
        out = self.original(key, text, method, *args, **kwargs)
        # The long text's first pass (gradient x input) comes before the integrated gradients.
        self.stamps.append(("teacher" if method == "integrated_gradients" else "first_pass", time.perf_counter()))
        return out

    def first(self, stage: str) -> float | None:
        return next((t for name, t in self.stamps if name == stage), None)

    def close(self) -> None:
        self.state.teacher_explanation = self.original


def _timed_run(at, marks: Marks) -> tuple[float, float, float, float | None]:
    """(first render, teacher complete, whole script, teacher's first pass drawn or None) of one page run,
    in seconds from its start."""
    marks.stamps.clear()
    started = time.perf_counter()
    at.run()
    total = time.perf_counter() - started
    if at.exception:
        raise RuntimeError(f"the page raised: {[e.value for e in at.exception]}")
    rows = sum(h.proto.body.count('class="kdl-row"') for h in at.get("html"))
    if rows == 0 or not marks.stamps:
        raise RuntimeError("the page drew no highlights")
    first_pass = marks.first("first_pass")
    return (marks.first("students") - started, marks.first("teacher") - started, total,
            None if first_pass is None else first_pass - started)


def first_app_load(run_path: Path) -> float:
    """``dashboard/app.py``'s first run (the default page) in a fresh interpreter, streamlit already imported
    (as in a started server); the seconds of that run."""
    probe = (
        "import sys, time; sys.path.insert(0, %r); from streamlit.testing.v1 import AppTest; "
        "at = AppTest.from_file(%r, default_timeout=600); t = time.perf_counter(); at.run(); "
        "s = time.perf_counter() - t; assert not at.exception, [e.value for e in at.exception]; "
        "print('SECONDS', s, 'torch' in sys.modules)" % (str(ROOT), str(ROOT / "dashboard" / "app.py")))
    env = {**os.environ, "KDLENS_RUNS_DIR": str(run_path.parent)}
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("SECONDS")), None)
    if line is None:
        raise RuntimeError(f"the app's first run failed:\n{done.stderr[-2000:]}")
    return float(line.split()[1])


def browser_load(run_path: Path, root: Path | None = None) -> tuple[float, float, float]:
    """(server start to health, the page's heading drawn, its model card drawn), the last two from the request,
    in a real browser; ``root``: the kd-lens checkout whose app is served (default this one)."""
    from dashboard import browser

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, \
            browser.serve_app(run_path.parent, Path(tmp) / "streamlit.log", 180, root=root) as base:
        up = time.perf_counter() - started
        with browser.browser_page(1400, 1000, 180_000) as page:
            started = time.perf_counter()
            page.goto(base, wait_until="domcontentloaded")
            page.get_by_role("heading", name=f"Run {run_path.name}").first.wait_for(state="visible")
            heading = time.perf_counter() - started
            page.locator("[data-testid='stDataFrame']").first.wait_for(state="visible")  # the model card
            return up, heading, time.perf_counter() - started


def browser_against(run_path: Path, other: Path, loads: int) -> None:
    """First page loads alternating between this checkout's app and ``other``'s (e.g. an earlier commit in a
    worktree) on the same run: each one's median and range, and the ratio of the model card's medians."""
    timings: dict[str, list] = {"this": [], "other": []}
    for _ in range(loads):
        for name, root in (("other", other), ("this", None)):
            timings[name].append(browser_load(run_path, root))
    for name, label in (("this", "this checkout"), ("other", str(other))):
        cards, heads = [t[2] for t in timings[name]], [t[1] for t in timings[name]]
        print(f"  {label}: model card median {statistics.median(cards):.2f} s ({min(cards):.2f}-{max(cards):.2f}), "
              f"heading median {statistics.median(heads):.2f} s, {loads} loads")
    ratio = statistics.median(t[2] for t in timings["this"]) / statistics.median(t[2] for t in timings["other"])
    print(f"  model card, this checkout over the other: {ratio:.2f}x (alternating loads, same run, same minutes)")


def _in_thread(function, *args):
    """``function(*args)`` in a new thread, as the page script runs in one (torch's thread pools are set per
    thread; a baseline in the main thread would run under other settings than the page)."""
    import threading

    from kdcore.utils import configure_threads

    out: list = []
    threads = int(os.environ["KDLENS_THREADS"])
    worker = threading.Thread(target=lambda: (configure_threads(threads), out.append(function(*args))))
    worker.start()
    worker.join()
    if not out:
        raise RuntimeError(f"the baseline {function.__name__} failed (see the traceback above)")
    return out[0]


def _baseline_short(models: dict, text: str, options: dict) -> float:
    from kdcore.attribution import explain_many

    started = time.perf_counter()
    explain_many(models, text, **options)
    return time.perf_counter() - started


def _baselines_long(models: dict, long_text: str, options: dict) -> dict:
    from kdcore.attribution import explain, explain_many

    students = {n: m for n, m in models.items() if n != "teacher"}
    out = {}
    target = models["teacher"].label_names[int(models["teacher"].predict_proba([long_text])[0].argmax())]
    started = time.perf_counter()
    explain_many(students, long_text, target=target, **options)
    out["students"] = time.perf_counter() - started
    started = time.perf_counter()
    teacher = explain(models["teacher"], long_text, target=target, **options)[0]
    out["teacher"] = time.perf_counter() - started
    out["teacher_notes"] = teacher.warnings
    out["teacher_delta"] = teacher.convergence_delta
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="Run folder (default: the demo run, else a tiny run built here).")
    parser.add_argument("--repeats", type=int, default=3, help="New 64-word texts timed (each a different text).")
    parser.add_argument("--words", type=int, default=1500, help="Words of the long text.")
    parser.add_argument("--browser", action="store_true", help="Also time the first page in headless Chromium.")
    parser.add_argument("--browser-against", metavar="CHECKOUT", type=Path,
                        help="Only the first page in the browser, alternating with another kd-lens checkout's app "
                             "(e.g. `git worktree add /tmp/old <commit>`); prints both and their ratio.")
    parser.add_argument("--loads", type=int, default=6, help="Loads of each app for --browser-against.")
    args = parser.parse_args(argv)
    os.environ.setdefault("KDLENS_THREADS", str(min(os.cpu_count() or 1, 4)))
    run_path, what = _find_run(args.run)
    tmp = None
    if run_path is None:
        tmp = tempfile.TemporaryDirectory()
        run_path = _tiny_run(Path(tmp.name))
        what = "a TINY random-weight run (no demo run found); these numbers are NOT a real teacher's"
    run_path = Path(run_path).resolve()
    os.environ["KDLENS_RUNS_DIR"] = str(run_path.parent)
    load = os.getloadavg()
    print(f"kd-lens dashboard latency on {what}; torch threads {os.environ['KDLENS_THREADS']}, {os.cpu_count()} "
          f"CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (seconds are this machine's now; the "
          "ratios against the baselines, measured in the same run, carry over)")

    if args.browser_against:
        print("(c) first page load in a real browser, against another checkout")
        browser_against(run_path, args.browser_against.resolve(), max(1, args.loads))
        if tmp is not None:
            tmp.cleanup()
        return 0
    print("(c) first page load")
    print(_line("dashboard/app.py default page, first run in a fresh interpreter (AppTest)",
                first_app_load(run_path), None, "first_load"))
    if args.browser:
        up, heading, drawn = browser_load(run_path)
        print(_line(f"real browser: first page's heading drawn (server up after {up:.1f} s)", heading, None,
                    "first_load"))
        print(_line("real browser: first page's model card drawn", drawn, None, "first_load"))
    _page_runs(run_path, args)
    if tmp is not None:
        tmp.cleanup()
    return 0


def _page_runs(run_path: Path, args) -> None:
    from streamlit.testing.v1 import AppTest

    from dashboard.state import EXPLAIN_IG_STEPS, load_run_models

    marks = Marks()
    at = AppTest.from_function(_view_script, args=("explain", str(ROOT)), default_timeout=1200)
    at.session_state["kdlens_run_folder"] = str(run_path)
    started = time.perf_counter()
    at.run()
    print(_line("Explain page's first run (models loaded, the default example explained; AppTest)",
                time.perf_counter() - started, None, None))
    options = {"method": "integrated_gradients", "n_steps": EXPLAIN_IG_STEPS}
    models = load_run_models(str(run_path), (run_path / "manifest.json").stat().st_mtime).models()
    # Page and baseline alternate on the same new text, so a change of load hits both (the text decides
    # n_steps="auto"'s points). The baseline comes second: the augmented students' scores for the text's unseen
    # n-grams are then already in their tables, which favours the baseline, not the page.
    timings, baselines = [], []
    for i in range(max(1, args.repeats)):
        suffix = VARIANTS[i % len(VARIANTS)] + f" ({i})" * (i >= len(VARIANTS))
        at.text_area(key="explain_text").set_value(TEXT_64 + suffix)
        timings.append(_timed_run(at, marks))
        baselines.append(_in_thread(_baseline_short, models, TEXT_64 + suffix, options))
    words = len(TEXT_64.split())
    base = statistics.median(baselines)
    print(f"(a) a new {words}-word text, {len(models)} models, n_steps {EXPLAIN_IG_STEPS} (median of {len(timings)})")
    print(_line("every prediction and every highlight (teacher's included)",
                statistics.median(t[1] for t in timings), base, "short"))
    print(_line("whole page (agreement and deletion curves too)", statistics.median(t[2] for t in timings),
                base, None))
    print(f"  baseline: explain_many() straight on the same models and texts, just after the page, {base:.2f} s")

    text = long_review(args.words)
    at.text_area(key="explain_text").set_value(text)
    first, teacher, total, first_pass = _timed_run(at, marks)
    marks.close()
    base = _in_thread(_baselines_long, models, text, options)
    notes = [n for n in base["teacher_notes"] if "n_steps" in n or "windows" in n]
    print(f"(b) a new {len(text.split())}-word text")
    print(_line("first full render (every prediction, every student's attribution)", first, base["students"],
                "first_render"))
    if first_pass is not None:
        print(_line("the teacher's first pass (gradient x input, labelled) drawn", first_pass, None, None))
    print(_line("the teacher's integrated gradients complete", teacher, base["teacher"], "teacher"))
    print(_line("whole page", total, None, None))
    print(f"  baselines (the same text, just after the page): the students' explain() straight "
          f"{base['students']:.2f} s, the teacher's "
          f"{base['teacher']:.2f} s (delta {base['teacher_delta']:+.3g}; {'; '.join(notes)})")


if __name__ == "__main__":
    raise SystemExit(main())
