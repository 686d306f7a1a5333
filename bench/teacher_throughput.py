"""Teacher throughput: kd-lens's batched prediction against transformers' pipeline, same process.

    python bench/teacher_throughput.py [--texts 2000] [--threads 2]
    python bench/teacher_throughput.py --gpu-only [--peak-tflops 989] [--compile]

Prints sequences/s of ``Teacher.predict_logits`` (length-sorted batches, dynamic padding,
inference mode) and of ``transformers.pipeline("text-classification")`` at its default batch
size, on the same model and the same texts, and their ratio (target >= 3 on CPU).

On a CUDA machine (or with ``--gpu-only``) it also runs a BERT-base-sized config (random
weights from a config, no download; SDPA attention, bf16 autocast) at sequence length 128
and reports model FLOP utilisation (MFU) against the card's dense bf16 peak, read off the
card's name (H100 SXM / H200: 989 TFLOP/s; the value used is printed; ``--peak-tflops``
overrides it): once for the bare model forward on a fixed batch, and once through
``Teacher.predict_logits`` on texts of exactly 126 wordpieces (tokenizing, token-budget
batches and copies included). Target: MFU >= 40%. ``--device cpu --tiny`` runs the same
code on a tiny config on the CPU (a dry run of the script; its MFU means nothing).

FLOPs counted: 2 per parameter per token for the encoder's matrices (embeddings excluded),
plus 4 x seq_len x hidden per token per layer for attention scores and their weighted sum,
plus the pooler and classifier once per sequence.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kdcore import accel  # noqa: E402
from kdcore.corpora import load_default_corpus  # noqa: E402
from kdcore.teacher import Teacher  # noqa: E402
from kdcore.utils import configure_threads  # noqa: E402

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' datasheets, TFLOP/s; the
# first name found in the card's name wins, so the specific variants come first.
BF16_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H200 NVL", 835.0), ("H100", 989.0), ("H200", 989.0),
    ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0),
)


def card_peak(name: str) -> tuple[float | None, str]:
    """(dense bf16 peak TFLOP/s, the table entry used) for a card name, or (None, "")."""
    for key, peak in BF16_PEAK_TFLOPS:
        if key in name:
            return peak, key
    return None, ""


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


def _bert_base(tiny: bool):
    from transformers import AutoModelForSequenceClassification, BertConfig

    size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256) if tiny else \
        dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    config = BertConfig(num_labels=2, **size)
    return config, AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")


def _flops_per_sequence(model, config, seq_len: int) -> float:
    encoder = sum(p.numel() for n, p in model.named_parameters() if ".encoder." in n and p.dim() == 2)
    head = sum(p.numel() for n, p in model.named_parameters() if ("pooler" in n or "classifier" in n) and p.dim() == 2)
    attention = 4 * config.num_hidden_layers * seq_len * config.hidden_size
    return seq_len * (2 * encoder + attention) + 2 * head


def _texts_of_wordpieces(tokenizer, n_texts: int, n_pieces: int) -> list[str]:
    """Texts of exactly ``n_pieces`` wordpieces: random whole-word vocabulary entries."""
    rng = np.random.default_rng(0)
    words = sorted(w for w in tokenizer.get_vocab() if w.isascii() and w.isalpha() and w.islower() and len(w) >= 3)
    words = [w for w in words if tokenizer.tokenize(w) == [w]][:5000]
    return [" ".join(rng.choice(words, n_pieces)) for _ in range(n_texts)]


def bench_gpu(device: str = "cuda", seq_len: int = 128, batch: int = 256, steps: int = 30, tiny: bool = False,
              peak: float | None = None, compile_model: bool = False, n_texts: int = 8192,
              tokenizer_source: str = "embedded-minilm") -> dict:
    from kdcore.teacher import Teacher, load_tokenizer as _load_tokenizer, resolve_source as _resolve

    config, model = _bert_base(tiny)
    model = model.to(device).eval()
    on_cuda = device.startswith("cuda")
    name = torch.cuda.get_device_name() if on_cuda else "cpu"
    found, key = card_peak(name)
    peak = peak or found
    print(f"device: {name}; dense bf16 peak used: "
          + (f"{peak:.0f} TFLOP/s ({'--peak-tflops' if key == '' else 'table entry ' + repr(key)})" if peak
             else "unknown (pass --peak-tflops)"))
    flops = _flops_per_sequence(model, config, seq_len)
    print(f"config: hidden {config.hidden_size}, layers {config.num_hidden_layers}, seq_len {seq_len}: "
          f"{flops / 1e9:.2f} GFLOP per sequence (forward)")
    forward = torch.compile(model) if compile_model else model
    ids = torch.randint(1000, config.vocab_size, (batch, seq_len), device=device)
    mask = torch.ones_like(ids)
    synchronize = torch.cuda.synchronize if on_cuda else (lambda: None)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else torch.autocast("cpu", enabled=False)
    with torch.inference_mode(), autocast:
        for _ in range(5):
            forward(input_ids=ids, attention_mask=mask)
        synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            forward(input_ids=ids, attention_mask=mask)
        synchronize()
    result = {"device": name, "peak_tflops": peak}
    _report(result, "model", f"bare model forward{' (torch.compile)' if compile_model else ''}: batch {batch}",
            batch * steps, time.perf_counter() - started, flops, peak)
    if compile_model:
        return result

    # The labelling path: Teacher.predict_logits (tokenizing, token-budget batches, copies).
    tokenizer = _load_tokenizer(_resolve(tokenizer_source))
    teacher = Teacher(model, tokenizer, ["a", "b"], device=device)
    texts = _texts_of_wordpieces(tokenizer, n_texts, seq_len - 2)
    teacher.predict_logits(texts[:256], use_cache=False)
    synchronize()
    started = time.perf_counter()
    chunked = teacher.predict_logits(texts, use_cache=False)
    synchronize()
    _report(result, "teacher", f"Teacher.predict_logits ({len(texts)} texts of {seq_len} tokens, bf16={on_cuda})",
            len(texts), time.perf_counter() - started, flops, peak)
    # The same call with the whole input tokenized first (no overlap of tokenizer and GPU): the baseline.
    teacher.tokenize_chunk = len(texts)
    synchronize()
    started = time.perf_counter()
    one_pass = teacher.predict_logits(texts, use_cache=False)
    synchronize()
    teacher.tokenize_chunk = None
    one_pass_s = time.perf_counter() - started
    result["teacher_one_pass_seq_per_s"] = len(texts) / one_pass_s
    # Same texts, same windows: the pipelined path must give the one-pass logits (batches may be cut
    # differently, so bf16 rounding may differ a little; the classes must not).
    result["chunked_max_abs_diff"] = float(np.abs(chunked - one_pass).max())
    result["chunked_same_label"] = float((chunked.argmax(1) == one_pass.argmax(1)).mean())
    print(f"  the same, tokenized in one pass before the GPU starts: {len(texts) / one_pass_s:,.0f} seq/s; "
          f"chunked / one pass: {result['teacher_seq_per_s'] / result['teacher_one_pass_seq_per_s']:.2f}x; "
          f"logits max |diff| {result['chunked_max_abs_diff']:.2e}, same class {result['chunked_same_label']:.4f}")
    if result["chunked_max_abs_diff"] > 0.1 or result["chunked_same_label"] < 0.99:
        raise SystemExit("FAILED: the pipelined labelling path disagrees with the one-pass path")
    # Where the labelling path's time goes: the tokenizer alone, and the forward alone at the
    # batch shape the token budget gives.
    started = time.perf_counter()
    teacher._input_ids(texts)
    result["teacher_tokenize_s"] = time.perf_counter() - started
    budget = accel.token_budget(torch.device(device), config.hidden_size, config.intermediate_size)
    rows = max(1, min(len(texts), budget // seq_len)) if budget else batch
    big = torch.randint(1000, config.vocab_size, (rows, seq_len), device=device)
    with torch.inference_mode(), autocast:
        model(input_ids=big, attention_mask=torch.ones_like(big))
        synchronize()
        started = time.perf_counter()
        for _ in range(max(1, len(texts) // rows)):
            model(input_ids=big, attention_mask=torch.ones_like(big))
        synchronize()
    forward_s = time.perf_counter() - started
    result["teacher_batch_rows"] = rows
    result["teacher_forward_seq_per_s"] = rows * max(1, len(texts) // rows) / forward_s
    print(f"  of which: tokenizing {len(texts)} texts {result['teacher_tokenize_s']:.2f} s; the forward alone at "
          f"its batch shape ({rows} x {seq_len}): {result['teacher_forward_seq_per_s']:,.0f} seq/s")
    return result


def _report(result: dict, key: str, label: str, sequences: int, seconds: float, flops: float, peak) -> None:
    """Print sequences/s, TFLOP/s and MFU of one measurement and add them to ``result``."""
    achieved = flops * sequences / seconds / 1e12
    result.update({f"{key}_seq_per_s": sequences / seconds, f"{key}_tflops": achieved})
    line = f"{label}: {sequences / seconds:,.0f} seq/s, {achieved:.1f} TFLOP/s"
    if peak:
        result[f"{key}_mfu"] = achieved / peak
        line += f", MFU {achieved / peak:.1%} (target >= 40%)"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gpu-only", action="store_true", help="Only the BERT-base MFU part.")
    parser.add_argument("--device", default="cuda", help="Device of the MFU part (cpu: a dry run, with --tiny).")
    parser.add_argument("--tiny", action="store_true", help="A tiny config instead of BERT-base (dry runs).")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--peak-tflops", type=float, help="The card's dense bf16 peak, when its name is not known.")
    parser.add_argument("--compile", action="store_true", help="Also time the bare forward under torch.compile.")
    parser.add_argument("--tokenizer", default="embedded-minilm",
                        help="Tokenizer folder for the Teacher.predict_logits part (a BERT uncased vocabulary).")
    parser.add_argument("--label-texts", type=int, default=8192,
                        help="Texts of 126 wordpieces for the Teacher.predict_logits part.")
    parser.add_argument("--json", help="Write the MFU figures to this JSON file.")
    args = parser.parse_args()
    configure_threads(args.threads)
    if not args.gpu_only:
        bench_cpu(args.texts)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: the GPU FLOP-utilisation part was not run")
        return
    small = dict(batch=8, steps=2, n_texts=64) if args.tiny else dict(batch=args.batch, steps=args.steps,
                                                                         n_texts=args.label_texts)
    small["tokenizer_source"] = args.tokenizer
    result = bench_gpu(args.device, tiny=args.tiny, peak=args.peak_tflops, **small)
    if args.compile:
        result["compiled"] = bench_gpu(args.device, tiny=args.tiny, peak=args.peak_tflops, compile_model=True,
                                       **small)
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
