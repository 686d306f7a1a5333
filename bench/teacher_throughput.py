"""Teacher throughput: kd-lens's batched prediction against transformers' pipeline, same process.

    python bench/teacher_throughput.py [--texts 2000] [--threads 2]

Prints sequences/s of ``Teacher.predict_logits`` (length-sorted batches, dynamic padding,
inference mode) and of ``transformers.pipeline("text-classification")`` at its default batch
size, on the same model and the same texts, and their ratio (target >= 3 on CPU).
On a CUDA machine it also runs a BERT-base-sized config (random weights) at sequence length
128 and reports model FLOP utilisation against the card's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kdcore.corpora import load_default_corpus  # noqa: E402
from kdcore.teacher import Teacher  # noqa: E402
from kdcore.utils import configure_threads  # noqa: E402

BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0}


def bench_cpu(n_texts: int) -> None:
    corpus = load_default_corpus()
    texts = (list(corpus.train.texts) * 2)[:n_texts]
    teacher = Teacher.from_encoder("embedded-minilm", corpus.train.label_names, device="cpu")
    from transformers import pipeline

    pipe = pipeline("text-classification", model=teacher.model, tokenizer=teacher.tokenizer, device=-1)
    teacher.predict_logits(texts[:64], use_cache=False)
    pipe(texts[:8])
    started = time.perf_counter()
    ours = teacher.predict_logits(texts, use_cache=False)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = pipe(texts, top_k=None)
    theirs_s = time.perf_counter() - started
    # Same model, same texts: the predicted classes must agree.
    theirs_label = np.array([max(r, key=lambda d: d["score"])["label"] for r in theirs])
    ours_label = np.array([teacher.model.config.id2label[i] for i in ours.argmax(1)])
    agreement = float((theirs_label == ours_label).mean())
    print(f"texts: {len(texts)}  threads: {torch.get_num_threads()}")
    print(f"kd-lens Teacher.predict_logits      : {len(texts) / ours_s:8.1f} seq/s ({ours_s:.1f} s)")
    print(f"transformers pipeline (batch_size=1): {len(texts) / theirs_s:8.1f} seq/s ({theirs_s:.1f} s)")
    print(f"same predictions: {agreement:.4f}")
    print(f"ratio: {theirs_s / ours_s:.2f}x (target >= 3)")


def bench_gpu(seq_len: int = 128, batch: int = 256, steps: int = 30) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                        num_labels=2)
    model = BertForSequenceClassification(config).cuda().eval()
    ids = torch.randint(1000, 30000, (batch, seq_len), device="cuda")
    mask = torch.ones_like(ids)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        for _ in range(5):
            model(input_ids=ids, attention_mask=mask)
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            model(input_ids=ids, attention_mask=mask)
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    n_params = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    flops_per_token = 2 * n_params + 2 * 2 * config.num_hidden_layers * seq_len * config.hidden_size
    achieved = flops_per_token * batch * seq_len * steps / seconds / 1e12
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
    print(f"GPU {name}: {batch * steps / seconds:.0f} seq/s at length {seq_len}, {achieved:.1f} TFLOP/s")
    if peak:
        print(f"model FLOP utilisation: {achieved / peak:.1%} of {peak:.0f} TFLOP/s dense bf16 (target >= 40%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    configure_threads(args.threads)
    bench_cpu(args.texts)
    if torch.cuda.is_available():
        bench_gpu()
    else:
        print("no CUDA device: the GPU FLOP-utilisation part was not run")


if __name__ == "__main__":
    main()
