"""The teacher's compute floor on this CPU: what the demo build and a long text's IG cannot go below.

    python bench/cpu_floor.py [--run runs/demo] [--threads 2]

Prints, for the run's teacher:
(a) forward throughput in tokens per second at three shapes: many short rows (an n-gram batch of
    the aug student's teacher pass), transfer-set-like rows and full 128-token windows;
(b) the cost of one forward and backward of a 128-token row (what integrated gradients pays per
    interpolation point and window) at batches of 16, 32 and 64 rows;
(c) int8 dynamic quantisation of the encoder's linear layers: its speed ratio at (a)'s shapes and
    how many of the run's dev texts change their predicted class (a cheaper teacher the students
    would learn from is only an option if it predicts as the teacher does).
Every figure is measured here, in one run; seconds move between runs on shared cores, ratios less.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHAPES = ((680, 6), (128, 32), (32, 128))  # (rows, tokens): n-gram batch, transfer texts, full windows


def _seconds(function, repeats: int = 3) -> float:
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def forward_seconds(model, rows: int, tokens: int) -> float:
    import torch

    ids = torch.randint(1000, 20000, (rows, tokens), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        return _seconds(lambda: model(input_ids=ids))


def gradient_row_seconds(model, rows: int, tokens: int = 128) -> float:
    """Seconds per row of a forward and backward to the input embeddings, as IG takes them."""
    import torch

    ids = torch.randint(1000, 20000, (rows, tokens), generator=torch.Generator().manual_seed(0))
    embeds = model.get_input_embeddings()(ids).detach()

    def step():
        inputs = embeds.clone().requires_grad_()
        logits = model(inputs_embeds=inputs).logits
        torch.autograd.grad(logits[:, 0].sum(), inputs)

    return _seconds(step) / rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "runs" / "demo"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from kdcore.runs import load_run

    torch.set_num_threads(args.threads)
    run = load_run(args.run)
    teacher = run.teacher
    teacher.cache_dir = None  # both predictions below computed here, never read from a cache
    model = teacher.model.eval()
    print(f"teacher of {args.run}: {teacher.n_parameters():,} parameters; torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} CPUs, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("(a) forward throughput")
    fp32 = {}
    for rows, tokens in SHAPES:
        fp32[rows, tokens] = forward_seconds(model, rows, tokens)
        print(f"  {rows} rows x {tokens} tokens: {rows * tokens / fp32[rows, tokens]:,.0f} tokens/s")
    print("(b) forward and backward of one 128-token row (integrated gradients' cost per point and window)")
    for rows in (16, 32, 64):
        print(f"  batch of {rows} rows: {1000 * gradient_row_seconds(model, rows):.1f} ms a row")
    print("(c) int8 dynamic quantisation of the linear layers")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantised = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        for rows, tokens in SHAPES:
            ratio = fp32[rows, tokens] / forward_seconds(quantised, rows, tokens)
            print(f"  {rows} rows x {tokens} tokens: {ratio:.2f}x the float32 speed")
        texts = run.split("dev").texts
        before = teacher.predict_logits(texts).argmax(1)
        teacher.model = quantised
        try:
            after = teacher.predict_logits(texts).argmax(1)
        finally:
            teacher.model = model
    changed = int((before != after).sum())
    print(f"  predicted class changed on {changed} of {len(texts)} dev texts ({changed / len(texts):.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
