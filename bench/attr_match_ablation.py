"""attr_match ablation: does matching the teacher's word attributions change fidelity and
explanation agreement?

    python bench/attr_match_ablation.py [--run runs/demo] [--n-attr 1000] [--eval 60] [--weight 1.0]

Computes teacher integrated-gradients word attributions for the first ``--n-attr`` texts of
the run's transfer set (n_steps 16), then trains the run's linear (and MLP) student config
twice on the whole transfer set, without and with ``attr_match`` (texts without an
attribution are left out of that loss only), and reports on the test split: fidelity, and
agreement (Spearman, top-k overlap, sign agreement) of the student's IG with the teacher's
IG (n_steps 50) on ``--eval`` test texts. Both arms train with Adam (the solver attr_match
needs), also for the linear student, whose default is L-BFGS. Everything in one process.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kdcore.attribution import explain  # noqa: E402
from kdcore.config import DistillConfig, StudentConfig  # noqa: E402
from kdcore.explain_metrics import agreement  # noqa: E402
from kdcore.metrics import fidelity  # noqa: E402
from kdcore.runs import load_run  # noqa: E402
from kdcore.students import LinearStudent, MLPStudent  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/demo")
    parser.add_argument("--n-attr", type=int, default=1000)
    parser.add_argument("--eval", type=int, default=60)
    parser.add_argument("--weight", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kinds", default="linear")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    run = load_run(args.run)
    teacher = run.teacher
    texts = list(run.split("transfer").texts)
    logits = run.array("teacher_logits.npy")
    test = run.split("test")
    test_logits = run.array("teacher_test_logits.npy")
    distill_config = DistillConfig.from_dict(run.manifest["distill"])

    started = time.perf_counter()
    attributed = explain(teacher, texts[: args.n_attr], n_steps=16)
    attr_seconds = time.perf_counter() - started
    attributions = [e.scores for e in attributed] + [None] * (len(texts) - args.n_attr)
    eval_texts = list(test.texts[: args.eval])
    teacher_eval = explain(teacher, eval_texts, n_steps=50)
    print(f"teacher IG on {args.n_attr} transfer texts: {attr_seconds:.0f} s; transfer set {len(texts)} texts")

    print(f"{'student':10s} {'attr_match':>10s} {'fidelity':>9s} {'accuracy':>9s} {'spearman':>9s} "
          f"{'top-k':>7s} {'sign':>7s} {'fit s':>6s}")
    for kind in args.kinds.split(","):
        # Both arms train with Adam: attr_match needs minibatches, so the linear student's
        # default L-BFGS solver would make the solver, not attr_match, the difference.
        base = StudentConfig.from_dict({**run.manifest["students"][kind]["config"], "solver": "adam"})
        for weight in (0.0, args.weight):
            config = DistillConfig.from_dict({**distill_config.to_dict(), "attr_match": weight})
            cls = LinearStudent if base.kind == "linear" else MLPStudent
            started = time.perf_counter()
            student = cls(base).fit(texts, teacher_logits=logits, label_names=run.label_names, distill=config,
                                    teacher_attributions=attributions if weight else None, device="cpu")
            fit_seconds = time.perf_counter() - started
            student_logits = student.predict_logits(test.texts)
            fid = fidelity(student_logits, test_logits)["fidelity"]
            acc = float((student_logits.argmax(1) == test.labels).mean())
            targets = [e.target for e in teacher_eval]
            student_eval = explain(student, eval_texts, target=targets)
            scores = [agreement(t, s) for t, s in zip(teacher_eval, student_eval)]
            mean = {k: float(np.nanmean([s[k] for s in scores])) for k in ("spearman", "top_k_overlap", "sign_agreement")}
            print(f"{kind:10s} {weight:10.2f} {fid:9.4f} {acc:9.4f} {mean['spearman']:9.3f} "
                  f"{mean['top_k_overlap']:7.3f} {mean['sign_agreement']:7.3f} {fit_seconds:6.1f}")


if __name__ == "__main__":
    main()
