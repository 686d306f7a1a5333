"""Dashboard latency: from entering a 64-word text on the Explain page to every model's
prediction and integrated-gradients highlights (plus agreement and deletion curves),
and the cached re-render of the same text.

Timed with Streamlit's AppTest (the page script runs in-process, exactly as the server
runs it, without the browser's drawing), against the demo run (runs/demo, or
$KDLENS_RUNS_DIR/demo); when there is none, against a tiny random-weight run built on the
spot, which says nothing about real model speed (the output says which).

    python bench/app_latency.py [--run PATH] [--repeats 3]

Targets: fresh text <= 3 s, cached re-render <= 300 ms; a 1,500-word text (many teacher windows)
<= 10 s, with the page's notice that it was explained window by window.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FRESH_TARGET_S = 3.0
CACHED_TARGET_S = 0.3
TEXT_64 = (
    "The first half of this film is a quiet, careful portrait of a family that has stopped talking, and the "
    "actors make every silence count. Then the plot takes over: a kidnapping, a chase, a twist you can see "
    "coming from the opening credits. It never becomes boring, but the charm of those early scenes is gone, "
    "and the ending feels rushed and cheap."
)
VARIANTS = ("", " Still worth seeing.", " Honestly, skip it.", " A mixed bag.", " Go anyway.")
LONG_TARGET_S = 10.0
LONG_WORDS = 1500


def long_review(words: int = LONG_WORDS) -> str:
    """A review of about ``words`` words: the 64-word text's sentences, numbered so no two repeat."""
    sentences = [s.strip() + "." for s in TEXT_64.split(".") if s.strip()]
    out, count, i = [], 0, 0
    while count < words:
        sentence = f"In scene {i + 1}, " + sentences[i % len(sentences)][0].lower() + sentences[i % len(sentences)][1:]
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
    for folder in (Path(os.environ.get("KDLENS_RUNS_DIR", "")) if os.environ.get("KDLENS_RUNS_DIR") else None,
                   ROOT / "runs"):
        if folder is not None and (folder / "demo" / "manifest.json").is_file():
            return folder / "demo", f"demo run {folder / 'demo'}"
    return None, ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="Run folder (default: the demo run, else a tiny run built here).")
    parser.add_argument("--repeats", type=int, default=3, help="Fresh texts timed (each a different text).")
    args = parser.parse_args(argv)
    os.environ.setdefault("KDLENS_THREADS", str(os.cpu_count() or 1))

    run_path, what = _find_run(args.run)
    tmp = None
    if run_path is None:
        tmp = tempfile.TemporaryDirectory()
        run_path = _tiny_run(Path(tmp.name))
        what = ("a TINY random-weight run (no demo run found: build it with `python -m kdcore demo`); "
                "these numbers are NOT the real MiniLM teacher's")
    os.environ["KDLENS_RUNS_DIR"] = str(Path(run_path).parent)

    from streamlit.testing.v1 import AppTest

    def new_page():
        at = AppTest.from_function(_view_script, args=("explain", str(ROOT)), default_timeout=600)
        # Open this run (the picker's folder field), whatever else the runs folder holds.
        at.session_state["kdlens_run_folder"] = str(run_path)
        return at

    print(f"kd-lens dashboard latency (AppTest timing: the Explain page's script run in-process, no browser "
          f"drawing) on {what}; torch threads {os.environ['KDLENS_THREADS']}, {os.cpu_count()} CPUs")
    at = new_page()
    started = time.perf_counter()
    at.run()
    first = time.perf_counter() - started
    if at.exception:
        print("the page raised:", [e.value for e in at.exception])
        return 1
    print(f"  first page load (models loaded, default example explained): {first:7.2f} s")

    fresh, cached = [], []
    for i in range(max(1, args.repeats)):
        text = TEXT_64 + VARIANTS[i % len(VARIANTS)] + (f" ({i})" if i >= len(VARIANTS) else "")
        at.text_area(key="explain_text").set_value(text)
        started = time.perf_counter()
        at.run()
        fresh.append(time.perf_counter() - started)
        rows = sum(h.proto.body.count('class="kdl-row"') for h in at.get("html"))
        if at.exception or rows == 0:
            print("the page did not render highlights:", [e.value for e in at.exception])
            return 1
        started = time.perf_counter()
        at.run()
        cached.append(time.perf_counter() - started)
    words = len(TEXT_64.split())
    fresh_s, cached_s = statistics.median(fresh), statistics.median(cached)
    print(f"  new {words}-word text -> every model's prediction + IG highlights ({rows} models), agreement, "
          f"deletion curves: median {fresh_s:6.2f} s over {len(fresh)} texts "
          f"(target {FRESH_TARGET_S:.1f} s: {'OK' if fresh_s <= FRESH_TARGET_S else 'SLOWER'}, "
          f"{fresh_s / FRESH_TARGET_S:.2f}x the target)")
    print(f"  same text again (cached re-render): median {cached_s * 1000:6.0f} ms "
          f"(target {CACHED_TARGET_S * 1000:.0f} ms: {'OK' if cached_s <= CACHED_TARGET_S else 'SLOWER'}, "
          f"{cached_s / CACHED_TARGET_S:.2f}x the target)")

    # A 1,500-word review: many teacher windows; every model's prediction and IG highlights.
    text = long_review()
    at.text_area(key="explain_text").set_value(text)
    started = time.perf_counter()
    at.run()
    long_s = time.perf_counter() - started
    rows = sum(h.proto.body.count('class="kdl-row"') for h in at.get("html"))
    notice = any("window by window" in i.value for i in at.info)
    if at.exception or rows == 0:
        print("the page did not render the long text:", [e.value for e in at.exception])
        return 1
    print(f"  new {len(text.split())}-word text -> every model's prediction + IG highlights ({rows} models): "
          f"{long_s:6.2f} s (target {LONG_TARGET_S:.0f} s: {'OK' if long_s <= LONG_TARGET_S else 'SLOWER'}, "
          f"{long_s / LONG_TARGET_S:.2f}x the target); window notice shown: {'yes' if notice else 'NO'}")

    # Where a fresh text's time goes (kdcore calls only, same process, warm models).
    from dashboard.state import DASHBOARD_IG_STEPS
    from dashboard.state import load_run_models
    from kdcore.attribution import explain_many
    from kdcore.explain_metrics import agreement, deletion_curve

    key_path = str(Path(run_path).resolve())
    run = load_run_models(key_path, (Path(key_path) / "manifest.json").stat().st_mtime)
    models = run.models()
    text = TEXT_64 + " One more time."
    started = time.perf_counter()
    for model in models.values():
        model.predict_proba([text])
    predict_s = time.perf_counter() - started
    started = time.perf_counter()
    explanations = explain_many(models, text, method="integrated_gradients", n_steps=DASHBOARD_IG_STEPS)
    explain_s = time.perf_counter() - started
    started = time.perf_counter()
    explain_many({"teacher": models["teacher"]}, text + " Again.", method="integrated_gradients",
                 n_steps=DASHBOARD_IG_STEPS)
    teacher_s = time.perf_counter() - started
    started = time.perf_counter()
    for name, expl in explanations.items():
        if name != "teacher":
            agreement(explanations["teacher"], expl)
        deletion_curve(models[name], expl)
    metrics_s = time.perf_counter() - started
    print(f"  breakdown (kdcore calls, warm): IG n_steps={DASHBOARD_IG_STEPS} with every model (gives the "
          f"predictions too) {explain_s * 1000:.0f} ms, of which the teacher ~{teacher_s * 1000:.0f} ms; "
          f"agreement + deletion curves {metrics_s * 1000:.0f} ms; a plain predict of every model "
          f"{predict_s * 1000:.0f} ms (not needed by the page)")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
