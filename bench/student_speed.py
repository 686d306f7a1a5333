"""Student speed and size against the teacher: one process, same texts, same threads.

    python bench/student_speed.py [--run runs/demo] [--threads 2] [--seconds 2] [--student DIR ...]

Measures texts/s of ``predict_proba`` over the default corpus's test texts for the teacher
(length-sorted batches) and each student (featurizing included), and bytes on disk, then
prints the ratios. Targets: students >= 100x faster and >= 50x smaller than the MiniLM
teacher. With the demo run present its teacher and students are used; otherwise the embedded
MiniLM (fresh head: same cost) and students trained here on the gold labels. ``--student DIR``
adds a saved student (given the run's teacher where it reads the teacher's view of unseen
n-grams). Each student's first pass over the test texts (``cold``: an aug_linear student then
embeds the n-grams it never saw, once) is timed apart from its steady speed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kdcore.corpora import load_default_corpus  # noqa: E402
from kdcore.metrics import model_bytes  # noqa: E402
from kdcore.students import LinearStudent, MLPStudent  # noqa: E402
from kdcore.teacher import Teacher  # noqa: E402


def texts_per_second(predict, texts: list[str], seconds: float) -> float:
    predict(texts[:256])  # warm caches (regex, word normalisation) outside the timing
    done, started = 0, time.perf_counter()
    while True:
        predict(texts)
        done += len(texts)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def _size(model) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp)
        return model_bytes(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/demo")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--student", action="append", default=[], help="a saved student folder to add")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = load_default_corpus()
    test_texts = list(corpus.test.texts)

    if Path(args.run, "manifest.json").is_file():
        from kdcore.runs import load_run

        run = load_run(args.run)
        teacher, students = run.teacher, {n: run.student(n) for n, e in run.info.students.items() if e.distilled}
        print(f"models from {args.run}")
    else:
        teacher = Teacher.from_encoder("embedded-minilm", corpus.label_names, device="cpu")
        students = {}
        for cls in (LinearStudent, MLPStudent):
            started = time.perf_counter()
            student = cls().fit(corpus.train.texts, labels=corpus.train.labels, label_names=corpus.label_names,
                                device="cpu")
            students[student.name] = student
            print(f"{cls.__name__} trained on gold labels in {time.perf_counter() - started:.1f} s")
    from kdcore.students import load_student

    for folder in args.student:
        student = load_student(folder)
        if hasattr(student, "use_teacher"):
            student.use_teacher(teacher)
        students[student.name] = student
    teacher.cache_dir = None
    words = np.mean([len(t.split()) for t in test_texts])
    print(f"texts: {len(test_texts)} test reviews (~{words:.0f} words each); torch threads {torch.get_num_threads()}")

    started = time.perf_counter()
    teacher.predict_proba(test_texts, use_cache=False)
    teacher_speed = len(test_texts) / (time.perf_counter() - started)
    teacher_bytes = _size(teacher)
    print(f"{'teacher':8s} {teacher_speed:10,.0f} texts/s  {teacher_bytes / 1e6:8.2f} MB")
    for name, student in students.items():
        started = time.perf_counter()
        student.predict_proba(test_texts)
        cold = len(test_texts) / (time.perf_counter() - started)
        speed = texts_per_second(student.predict_proba, test_texts, args.seconds)
        size = _size(student)
        print(f"{name:8s} {speed:10,.0f} texts/s  {size / 1e6:8.2f} MB   cold {cold / teacher_speed:6.1f}x   "
              f"speed ratio {speed / teacher_speed:6.0f}x (target >= 100)   "
              f"size ratio {teacher_bytes / size:6.0f}x (target >= 50)")


if __name__ == "__main__":
    main()
