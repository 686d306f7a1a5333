"""bf16 autocast against float32: the teacher's logits on the same texts, same device.

    python bench/bf16_check.py --teacher DIR [--device cuda] [--texts 2000] [--atol 0.1]

Loads the teacher twice, once with ``precision="auto"`` (bf16 autocast on CUDA) and once
with ``precision="fp32"``, predicts the default corpus's test texts (and 20 texts longer than
the window) with both, the bf16 run through the pipelined path (``--chunk`` texts tokenized at a
time while the device works) and the fp32 run tokenized in one pass, and prints
the largest and mean absolute logit difference, the largest probability difference and the
share of texts given the same class. It passes (exit status 0) when the largest logit
difference is within ``--atol`` and at least ``--agreement`` of the labels agree. On the
CPU both runs are float32 (a dry run: the differences are 0 up to the chunking).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kdcore.corpora import load_default_corpus  # noqa: E402
from kdcore.teacher import Teacher  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True, help="A saved teacher folder.")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--atol", type=float, default=0.1, help="Largest allowed |logit bf16 - logit fp32|.")
    parser.add_argument("--agreement", type=float, default=0.99, help="Smallest allowed share of equal labels.")
    parser.add_argument("--chunk", type=int, default=256, help="Texts per tokenizing chunk on the bf16 path.")
    parser.add_argument("--json", help="Write the figures to this JSON file.")
    args = parser.parse_args()
    corpus = load_default_corpus()
    texts = (list(corpus.test.texts) + list(corpus.dev.texts))[:args.texts]
    # A few texts longer than the teacher's window, so that windows are averaged on both paths.
    texts += [" ".join(texts[k:k + 30]) for k in range(0, min(len(texts), 600), 30)]
    outputs, seconds = {}, {}
    for precision in ("fp32", "auto"):
        teacher = Teacher.from_pretrained(args.teacher, device=args.device, precision=precision)
        teacher.model.float()
        # fp32: every text tokenized before the first batch; bf16: the pipelined path (chunks of
        # --chunk texts, the next tokenized while the device works), so both differences are checked.
        teacher.tokenize_chunk = len(texts) if precision == "fp32" else args.chunk
        teacher.predict_logits(texts[:64], use_cache=False)  # warm-up
        started = time.perf_counter()
        outputs[precision] = teacher.predict_logits(texts, use_cache=False)
        if teacher.device.type == "cuda":
            torch.cuda.synchronize()
        seconds[precision] = time.perf_counter() - started
    fp32, bf16 = outputs["fp32"], outputs["auto"]
    diff = np.abs(bf16 - fp32)
    probs = lambda z: np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)  # noqa: E731
    agreement = float((bf16.argmax(1) == fp32.argmax(1)).mean())
    result = {"texts": len(texts), "max_abs_logit_diff": float(diff.max()), "mean_abs_logit_diff": float(diff.mean()),
              "max_abs_prob_diff": float(np.abs(probs(bf16) - probs(fp32)).max()), "label_agreement": agreement,
              "fp32_seconds": seconds["fp32"], "bf16_seconds": seconds["auto"], "logit_range":
              [float(fp32.min()), float(fp32.max())], "atol": args.atol, "min_agreement": args.agreement}
    result["passed"] = result["max_abs_logit_diff"] <= args.atol and agreement >= args.agreement
    print(f"{len(texts)} texts; fp32 logits in [{fp32.min():.2f}, {fp32.max():.2f}]")
    print(f"bf16 vs fp32: max |logit diff| {result['max_abs_logit_diff']:.4f} (atol {args.atol}), mean "
          f"{result['mean_abs_logit_diff']:.4f}, max |prob diff| {result['max_abs_prob_diff']:.4f}, same label "
          f"{agreement:.4f} (at least {args.agreement})")
    print(f"time: fp32 {seconds['fp32']:.2f} s, bf16 {seconds['auto']:.2f} s "
          f"({seconds['fp32'] / seconds['auto']:.2f}x)")
    print("PASSED" if result["passed"] else "FAILED")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
