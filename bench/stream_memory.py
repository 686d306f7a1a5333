"""Peak memory of training the linear student on a large transfer set from label shards.

    python bench/stream_memory.py [--texts 1000000] [--kind clauses|zipf] [--in-memory-texts 100000]

1. Prepares (in its own process, not measured) a collection of ``--texts`` generated texts as
   Parquet shards and a label folder over it, in the format ``python -m kdcore label`` writes.
   The logits come from a cheap stand-in teacher (a fixed random linear scorer over hashed
   words, numpy): the memory of training does not depend on who made the logits, and labelling
   a million texts with a transformer takes hours on two CPU cores (bench/label_scale.py
   measures that path).
2. Trains the default linear student (words + word pairs, 50,000 features, L-BFGS) with
   ``fit_linear_stream`` from the shards in a child process under ``/usr/bin/time -v`` and
   prints its maximum resident set size (the aim: under 4 GB).
3. For contrast, the in-memory ``LinearStudent.fit`` on the first ``--in-memory-texts`` texts,
   measured the same way (0 = skip).

``--kind clauses`` recombines Rotten Tomatoes clauses (realistic reviews, a modest vocabulary);
``--kind zipf`` draws words from the corpus vocabulary by a Zipf law, so almost every word
pair is new: the worst case for the vocabulary count, which then prunes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

import numpy as np  # noqa: E402


def zipf_texts(n: int, seed: int = 0) -> list[str]:
    from collections import Counter

    from kdcore.corpora import load_default_corpus

    counts = Counter(w for t in load_default_corpus().train.texts for w in t.lower().split())
    words = [w for w, _ in counts.most_common()]
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(words) + 1)
    lengths = rng.integers(8, 36, size=n)
    draws = rng.choice(len(words), size=int(lengths.sum()), p=weights / weights.sum())
    out, at = [], 0
    for length in lengths:
        out.append(" ".join(words[i] for i in draws[at:at + length]))
        at += length
    return out


def prepare(folder: Path, n: int, kind: str, files: int = 20) -> Path:
    """Collection + label folder (stand-in teacher) under ``folder``; returns the label folder."""
    import pandas as pd

    from label_scale import review_like_texts
    from kdcore.scale.collection import Collection, text_hash
    from kdcore.scale.store import LabelFolder, write_shard

    texts = review_like_texts(n) if kind == "clauses" else zipf_texts(n)
    data = folder / "data"
    data.mkdir(parents=True)
    per_file = -(-n // files)
    for i in range(files):
        pd.DataFrame({"text": texts[i * per_file:(i + 1) * per_file]}).to_parquet(data / f"part-{i:03d}.parquet")
    del texts
    collection = Collection.open(data)
    plan = collection.plan(10_000)
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(1 << 16, 2)).astype(np.float32)
    identity = {"source": "stand-in: random linear scorer over hashed words", "fingerprint": "stand-in",
                "label_names": ["neg", "pos"], "max_length": 128, "stride": 32, "hidden_size": 0}
    manifest = {"format": 1, "teacher": identity, "pooled": False,
                "collection": {**collection.to_dict(), "files": collection.fingerprint()},
                "plan": [piece.__dict__ for piece in plan]}
    labels = LabelFolder.create_or_resume(folder / "labels", manifest)
    for piece in plan:
        kept = collection.read(piece)
        logits = np.stack([scores[[hash(w) & 0xFFFF for w in re.findall(r"\w+", t)]].sum(0) / 3 for t in kept.texts])
        write_shard(labels.shard_path(piece), piece, kept.ids, [text_hash(t) for t in kept.texts], logits, None,
                    kept.skipped)
    return folder / "labels"


def train(labels: Path, mode: str, n_in_memory: int, result: Path) -> None:
    """The measured step (run in a child process)."""
    from kdcore.config import StudentConfig
    from kdcore.scale.store import LabelFolder
    from kdcore.students import LinearStudent
    from kdcore.students.train_stream import fit_linear_stream
    from kdcore.utils import configure_threads

    configure_threads(1)
    folder = LabelFolder.open(labels)
    config = StudentConfig(kind="linear")
    started = time.perf_counter()
    if mode == "stream":
        student = fit_linear_stream(LinearStudent(config), folder.texts_and_logits, workdir=str(labels.parent))
        n = student.featurizer_.n_fit_texts_
        extra = {"vocabulary_undercount": student.vocabulary_undercount_}
    else:
        texts, logits = [], []
        for chunk_texts, chunk_logits in folder.texts_and_logits():
            texts += chunk_texts
            logits.append(chunk_logits)
            if len(texts) >= n_in_memory:
                break
        n = min(n_in_memory, len(texts))
        student = LinearStudent(config).fit(texts[:n], np.concatenate(logits)[:n])
        extra = {}
    result.write_text(json.dumps({"texts": n, "seconds": time.perf_counter() - started, "features":
                                  student.featurizer_.n_features, "converged": student.converged_,
                                  "iterations": student.history_[-1]["iterations"], **extra}))


def measured(args: list[str]) -> tuple[dict, float]:
    """Run ``train`` in a child under /usr/bin/time -v: (its result, max RSS in GiB)."""
    result = Path(tempfile.mktemp(suffix=".json"))
    proc = subprocess.run(["/usr/bin/time", "-v", sys.executable, __file__, "--child", *args, str(result)],
                          capture_output=True, text=True, env={**os.environ, "KDLENS_THREADS": "1"})
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return json.loads(result.read_text()), rss_kib / 1024 ** 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=1_000_000)
    parser.add_argument("--kind", choices=["clauses", "zipf"], default="clauses")
    parser.add_argument("--in-memory-texts", type=int, default=100_000)
    parser.add_argument("--child", nargs=4, metavar=("LABELS", "MODE", "N", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        labels, mode, n, result = args.child
        train(Path(labels), mode, int(n), Path(result))
        return
    work = Path(tempfile.mkdtemp(prefix="kdlens-stream-bench-", dir=os.environ.get("KDLENS_RUNS_DIR")))
    started = time.perf_counter()
    labels = prepare(work, args.texts, args.kind)
    print(f"prepared {args.texts:,} {args.kind} texts and their label shards in {time.perf_counter() - started:.0f} s "
          f"({work})")
    stream, stream_gib = measured([str(labels), "stream", "0"])
    print(f"fit_linear_stream      : {stream['texts']:>9,} texts, peak RSS {stream_gib:.2f} GiB "
          f"({'under' if stream_gib < 4 else 'OVER'} 4 GB), {stream['seconds']:.0f} s, {stream['features']:,} "
          f"features, L-BFGS {stream['iterations']} iterations, converged={stream['converged']}, vocabulary "
          f"undercount bound {stream['vocabulary_undercount']}")
    if args.in_memory_texts:
        memory, memory_gib = measured([str(labels), "memory", str(args.in_memory_texts)])
        print(f"in-memory fit (contrast): {memory['texts']:>9,} texts, peak RSS {memory_gib:.2f} GiB, "
              f"{memory['seconds']:.0f} s")
    import shutil

    shutil.rmtree(work)


if __name__ == "__main__":
    main()
