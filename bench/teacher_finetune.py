"""The demo teacher's fine-tuning time: the embedded MiniLM on the default corpus, as `kdcore demo` trains it.

    python bench/teacher_finetune.py [--device cuda] [--encoder embedded-minilm] [--max-steps 450] [--save DIR]

Fine-tunes with the demo's settings (``TeacherConfig(max_steps=450)``: batches of 32, dev
evaluation every 150 steps with early stopping) on the given device (on CUDA: bf16
autocast, SDPA; on every device length-grouped batches) and prints the wall time, steps/s and the best dev
accuracy. ``--dev-texts`` and ``--max-steps`` shrink it for a dry run on the CPU. The
encoder's weights are used in float32 whatever the dtype they were saved in.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from kdcore.config import TeacherConfig  # noqa: E402
from kdcore.corpora import load_default_corpus  # noqa: E402
from kdcore.teacher import Teacher  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--encoder", default="embedded-minilm", help="Encoder folder (or embedded-minilm).")
    parser.add_argument("--max-steps", type=int, default=TeacherConfig().max_steps)
    parser.add_argument("--eval-every", type=int, default=TeacherConfig().eval_every)
    parser.add_argument("--dev-texts", type=int, default=0, help="Use only this many dev texts (0 = all).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save", help="Save the fine-tuned teacher to this folder.")
    parser.add_argument("--json", help="Write the figures to this JSON file.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = load_default_corpus()
    dev = corpus.dev if not args.dev_texts else corpus.dev.subset(list(range(min(args.dev_texts, len(corpus.dev)))))
    config = TeacherConfig(max_steps=args.max_steps, eval_every=args.eval_every)
    teacher = Teacher.from_encoder(args.encoder, corpus.train.label_names, config=config, device=args.device)
    teacher.model.float()  # float32 master weights (a bf16-saved encoder loads as bf16)
    on_cuda = teacher.device.type == "cuda"
    name = torch.cuda.get_device_name(teacher.device) if on_cuda else "cpu"
    print(f"device: {name}; train {len(corpus.train)} texts, dev {len(dev)}; max_steps {config.max_steps}, "
          f"batch {config.batch_size}, max_length {teacher.max_length}")
    if on_cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    teacher.fit(corpus.train, dev=dev)
    if on_cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    steps = teacher.history_[-1]["step"] if teacher.history_ else 0
    result = {"device": name, "steps": steps, "seconds": seconds, "steps_per_s": steps / seconds,
              "best_dev_accuracy": teacher.best_dev_score_, "precision": "bf16" if on_cuda else "fp32",
              "evaluations": [r for r in teacher.history_ if "dev_accuracy" in r]}
    print(f"fine-tuning: {steps} steps in {seconds:.1f} s ({steps / seconds:.2f} steps/s, dev evaluations "
          f"included); best dev accuracy {teacher.best_dev_score_}")
    if args.save:
        teacher.save(args.save)
        print(f"saved to {args.save}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
