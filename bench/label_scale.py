"""Labelling at scale: the Ray Data path of ``python -m kdcore label`` against the in-process
``Teacher.predict_logits``, same teacher, same texts, same run.

    python bench/label_scale.py [--texts 200000] [--teacher tiny|minilm] [--actors 1,2]

Texts are generated review-like sentences: two clauses of Rotten Tomatoes reviews joined by a
connective (seeded), written as Parquet shards. For each pool size A in ``--actors`` it times
``Teacher.predict_logits`` with A torch threads in this process, then ``label_collection``
with A CPU actors of one thread each, and prints:

- identical logits: max |difference| between the two (fp32 tolerance);
- throughput ratio = Ray texts/s / in-process texts/s (aim >= 0.85); Ray's time counts from the
  call to ``label_collection`` to the last shard on disk (planning, actor start-up, reading,
  labelling, hashing, writing), without ``ray.init`` (printed apart: paid once per cluster);
- the CPU-time ratio: in-process CPU seconds / (the actors' + the driver's CPU seconds), the same
  overhead measured without the contention of other jobs on shared cores;
- the per-actor rate and a scaling estimate for N GPUs.

``--teacher tiny`` (default) is a 2-layer BERT (hidden 128, 2 heads, intermediate 512, random
weights) with the MiniLM tokenizer: on two shared CPU cores the MiniLM teacher labels about
100 texts/s, so 200,000 texts would take over an hour per path. ``--teacher minilm`` runs the
embedded MiniLM (random head) for a MiniLM figure on a smaller ``--texts``.
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

from kdcore.config import TeacherConfig  # noqa: E402
from kdcore.utils import configure_threads  # noqa: E402

CONNECTIVES = (" , but ", " ; ", " , and ", " . yet ", " -- ", " , although ")


def review_like_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` texts made of two review clauses and a connective (Rotten Tomatoes words)."""
    import re

    from kdcore.corpora import load_default_corpus

    corpus = load_default_corpus()
    clauses = sorted({c.strip() for t in corpus.train.texts for c in re.split(r"[,;:]| but ", t) if len(c.split()) >= 3})
    rng = np.random.default_rng(seed)
    first, second = rng.integers(len(clauses), size=n), rng.integers(len(clauses), size=n)
    joins = rng.integers(len(CONNECTIVES), size=n)
    return [clauses[a] + CONNECTIVES[j] + clauses[b] for a, b, j in zip(first, second, joins)]


def make_teacher(kind: str, folder: Path) -> Path:
    from kdcore.teacher import Teacher, embedded_encoder_dir

    if kind == "minilm":
        teacher = Teacher.from_encoder("embedded-minilm", ["neg", "pos"], device="cpu")
    else:
        import torch
        from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

        torch.manual_seed(0)
        tokenizer = AutoTokenizer.from_pretrained(embedded_encoder_dir())
        config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=128, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=512, max_position_embeddings=512, num_labels=2,
                            id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1})
        teacher = Teacher(BertForSequenceClassification(config).eval(), tokenizer, ["neg", "pos"], device="cpu")
    teacher.save(folder)
    return folder


def write_collection(texts: list[str], folder: Path, files: int = 10) -> Path:
    import pandas as pd

    folder.mkdir(parents=True)
    per_file = -(-len(texts) // files)
    for i in range(files):
        pd.DataFrame({"text": texts[i * per_file:(i + 1) * per_file]}).to_parquet(folder / f"part-{i:03d}.parquet")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=200_000)
    parser.add_argument("--teacher", choices=["tiny", "minilm"], default="tiny")
    parser.add_argument("--actors", default="1,2", help="Comma-separated pool sizes to measure.")
    parser.add_argument("--shard-size", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    args = parser.parse_args()

    import ray

    from kdcore.scale.label import label_collection
    from kdcore.scale.store import PrecomputedLogits
    from kdcore.teacher import Teacher

    work = Path(tempfile.mkdtemp(prefix="kdlens-label-bench-"))
    texts = review_like_texts(args.texts)
    data = write_collection(texts, work / "data")
    model_dir = make_teacher(args.teacher, work / "teacher")
    config = TeacherConfig(epochs=0)
    words = np.mean([len(t.split()) for t in texts[:5000]])
    print(f"texts: {len(texts)} (about {words:.0f} words each), teacher: {args.teacher} "
          f"({sum(p.numel() for p in Teacher.from_pretrained(model_dir, config=config).model.parameters()):,} "
          f"parameters), shards of {args.shard_size}, {os.cpu_count()} CPUs")
    started = time.perf_counter()
    pool_sizes = [int(a) for a in args.actors.split(",")]
    ray.init(num_cpus=max(pool_sizes), include_dashboard=False, log_to_driver=False)
    print(f"ray.init: {time.perf_counter() - started:.1f} s (once per cluster; not in the ratios)")
    rates = {}
    for actors in pool_sizes:
        configure_threads(actors)
        teacher = Teacher.from_pretrained(model_dir, config=config, device="cpu")
        teacher.predict_logits(texts[:256], use_cache=False)  # warm-up
        started, cpu_started = time.perf_counter(), time.process_time()
        reference = teacher.predict_logits(texts, use_cache=False)
        local_s, local_cpu = time.perf_counter() - started, time.process_time() - cpu_started
        del teacher
        configure_threads(1)
        out = work / f"labels-{actors}"
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = label_collection(data, out, teacher=str(model_dir), teacher_config=config, shard_size=args.shard_size,
                                   batch_size=args.batch_size, actors=actors, threads_per_actor=1)
        ray_s = time.perf_counter() - started
        ray_cpu = summary.actor_cpu_seconds + (time.process_time() - cpu_started)
        logits, _, found = PrecomputedLogits([out]).lookup(texts)
        assert found.all(), "every text must have logits"
        difference = float(np.abs(logits - reference).max())
        local_rate, ray_rate = len(texts) / local_s, len(texts) / ray_s
        rates[actors] = ray_rate
        driver_ceiling = len(texts) / max(summary.driver_seconds, 1e-9)
        print(f"\n{actors} actor(s) x 1 thread vs in-process {actors} thread(s):")
        print(f"  in-process Teacher.predict_logits : {local_rate:9.1f} texts/s ({local_s:.1f} s)")
        print(f"  Ray Data label_collection         : {ray_rate:9.1f} texts/s ({ray_s:.1f} s, "
              f"{summary.driver_seconds:.1f} s of it on the driver: grouping rows, writing shards)")
        print(f"  identical logits: max |difference| = {difference:.2e} "
              f"({'OK' if difference <= 1e-4 else 'DIFFERENT'}, fp32 tolerance 1e-4)")
        print(f"  throughput ratio: {ray_rate / local_rate:.3f} (aim >= 0.85; wall clock, other jobs on these "
              f"cores included: load average {os.getloadavg()[0]:.1f})")
        print(f"  CPU-time ratio: {local_cpu / ray_cpu:.3f} (in-process CPU s {local_cpu:.1f} / Ray actors' + "
              f"driver's CPU s {ray_cpu:.1f}: the overhead without the other jobs' contention)")
    per_actor = rates[pool_sizes[0]] / pool_sizes[0]
    print(f"\nper-actor rate here: {per_actor:.0f} texts/s (CPU, 1 thread)")
    if len(pool_sizes) > 1:
        a, b = pool_sizes[0], pool_sizes[-1]
        print(f"scaling {a} -> {b} actors on {os.cpu_count()} shared cores: {rates[b] / rates[a]:.2f}x "
              f"(ideal {b / a:.0f}x)")
    print(f"driver ceiling: {driver_ceiling:,.0f} texts/s (texts / driver seconds: the one process every shard "
          "passes through)")
    print("scaling estimate for N GPUs (one actor each): throughput(N) ~= min(N x r_gpu x ratio, driver ceiling), "
          "r_gpu = one GPU's Teacher.predict_logits rate (bench/teacher_throughput.py), ratio = the throughput ratio "
          "above; reading is spread over the actors (each reads its own slices).")
    ray.shutdown()
    import shutil

    shutil.rmtree(work)


if __name__ == "__main__":
    main()
