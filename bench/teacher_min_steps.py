"""How many fine-tuning steps a small corpus's teacher needs: dev accuracy against steps.

    KDLENS_THREADS=2 python bench/teacher_min_steps.py [--corpus debates] [--steps 36,150,300]

For each step count, fine-tunes the embedded MiniLM encoder with a fresh head on the corpus's
train split (the default recipe otherwise: AdamW, lr 1e-4, warm-up 10%, linear decay, dev
evaluations every ``steps / 4`` steps keeping the best) and prints its dev accuracy with a 95%
Wilson interval and the seconds taken. Reads the dev split only; the test split is not touched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from kdcore.config import TeacherConfig  # noqa: E402
from kdcore.corpora import load_corpus  # noqa: E402
from kdcore.intervals import wilson  # noqa: E402
from kdcore.teacher import Teacher  # noqa: E402
from kdcore.utils import configure_threads  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="debates")
    parser.add_argument("--steps", default="36,150,300")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    configure_threads()
    corpus = load_corpus(args.corpus)
    print(f"{args.corpus}: train {len(corpus.train)}, dev {len(corpus.dev)}, classes {corpus.train.label_names}",
          flush=True)
    rows = []
    for steps in [int(s) for s in args.steps.split(",")]:
        config = TeacherConfig(epochs=1000, max_steps=steps, eval_every=max(1, steps // 4))
        teacher = Teacher.from_encoder(config.name_or_path, corpus.train.label_names, config=config)
        started = time.perf_counter()
        teacher.fit(corpus.train, corpus.dev)
        seconds = time.perf_counter() - started
        predicted = teacher.predict_logits(corpus.dev.texts, use_cache=False).argmax(1)
        correct = int((predicted == np.asarray(corpus.dev.labels)).sum())
        low, high = wilson(correct, len(corpus.dev))
        row = {"steps": steps, "dev_accuracy": correct / len(corpus.dev), "ci": [low, high], "seconds": seconds}
        rows.append(row)
        print(f"{steps:5d} steps: dev accuracy {row['dev_accuracy']:.3f} ({low:.3f}-{high:.3f}), {seconds:.0f} s",
              flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
