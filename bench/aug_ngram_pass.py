"""The augmented student's teacher pass over n-grams: the previous pass against the current one, in one process.

    KDLENS_THREADS=2 python bench/aug_ngram_pass.py [--texts 300] [--ngrams 3000] [--rounds 2] [--small-calls 60]

The n-grams are the vocabulary the aug student's featurizer (its default config) keeps on the longest
``--texts`` texts of the embedded corpus (movie plot summaries, about 200 words each), ``--ngrams`` of
them taken evenly along the frequency order, through the embedded MiniLM encoder on the CPU (its head
untrained: the cost of the pass does not depend on the head).

Two measures, each as ``previous / current`` seconds, rounds interleaved (previous, current, current,
previous, ...) so that load on shared cores falls on both alike:

- the vocabulary's pass (the student's fit): every n-gram new;
- prediction-time passes: ``--small-calls`` calls of 10 new n-grams each on a table already holding
  150,000 rows (as after the demo vocabulary), as the student meets n-grams it never saw when it scores
  test texts or the texts the explanation metrics edit.

The previous pass is kept below as it was (tokenized with offsets, length-sorted batches of 256 padded
to the longest with an attention mask, the table re-concatenated after every pass). The script also
prints the largest difference between the two passes' logits and embeddings (they must agree within
float tolerance; tests/test_aug_student.py checks it against one n-gram at a time).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kdcore.config import STUDENT_DEFAULTS  # noqa: E402
from kdcore.corpora import load_default_corpus  # noqa: E402
from kdcore.ngram_cache import NGRAM_MAX_TOKENS, NgramCache  # noqa: E402
from kdcore.students.featurize import Featurizer  # noqa: E402
from kdcore.teacher import Teacher  # noqa: E402
from kdcore.utils import configure_threads  # noqa: E402


class PreviousNgramCache(NgramCache):
    """The pass and the table as they were before the current version (for the comparison only)."""

    def __init__(self, teacher, directory=None, batch_size: int = 256):
        super().__init__(teacher, directory)
        self.batch_size = batch_size
        self._parts: list[tuple[np.ndarray, np.ndarray]] = []

    def _add(self, names, embeddings, logits) -> None:
        start = len(self._rows)
        self._rows.update((g, start + i) for i, g in enumerate(names))
        self._parts.append((np.asarray(embeddings, np.float16), np.asarray(logits, np.float32)))

    def _stacked(self):
        if len(self._parts) > 1:  # consolidated after every pass that added rows
            self._parts = [(np.concatenate([p[0] for p in self._parts]), np.concatenate([p[1] for p in self._parts]))]
        return self._parts[0]

    def _compute(self, ngrams, progress):
        teacher = self.teacher
        model, tokenizer = teacher.model, teacher.tokenizer
        ids, _ = teacher._token_ids(ngrams)
        body = min(NGRAM_MAX_TOKENS, teacher.max_length) - 2
        sequences = [[tokenizer.cls_token_id, *t[:body], tokenizer.sep_token_id] for t in ids]
        order = sorted(range(len(sequences)), key=lambda k: len(sequences[k]))
        embeddings = np.zeros((len(ngrams), model.config.hidden_size), dtype=np.float16)
        logits = np.zeros((len(ngrams), len(teacher.label_names)), dtype=np.float32)
        model.eval()
        with torch.inference_mode(), teacher._autocast():
            for start in range(0, len(order), self.batch_size):
                chosen = order[start:start + self.batch_size]
                input_ids, attention = teacher._pad([sequences[k] for k in chosen])
                out = model(input_ids=input_ids.to(teacher.device), attention_mask=attention.to(teacher.device),
                            output_hidden_states=True)
                mask = attention.to(teacher.device).unsqueeze(-1).float()
                pooled = (out.hidden_states[-1].float() * mask).sum(1) / mask.sum(1)
                embeddings[chosen] = pooled.cpu().numpy().astype(np.float16)
                logits[chosen] = out.logits.float().cpu().numpy()
        self.computed += len(ngrams)
        return embeddings, logits


def _vocabulary_pass(cls, teacher, ngrams):
    cache = cls(teacher)
    started = time.perf_counter()
    embeddings, logits = cache.features(ngrams)
    return time.perf_counter() - started, embeddings, logits


def _prefilled(cls, teacher, rows: int):
    """A cache already holding ``rows`` n-grams (placeholder rows: only the table's size matters here)."""
    cache = cls(teacher)
    cache._sync_key()
    hidden, classes = teacher.model.config.hidden_size, len(teacher.label_names)
    cache._add([f"\x00{i}" for i in range(rows)], np.zeros((rows, hidden), np.float16), np.zeros((rows, classes)))
    cache._stacked()
    return cache


def _small_calls(cls, teacher, batches, rows: int) -> float:
    cache = _prefilled(cls, teacher, rows)
    started = time.perf_counter()
    for batch in batches:
        cache.features(batch)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--ngrams", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--small-calls", type=int, default=60)
    parser.add_argument("--table-rows", type=int, default=150_000)
    args = parser.parse_args()
    configure_threads(None)
    corpus = load_default_corpus()
    texts = sorted(corpus.unlabelled.texts, key=len, reverse=True)[: args.texts]
    config = STUDENT_DEFAULTS["aug_linear"]
    vocabulary = list(Featurizer(ngram_max=config.ngram_max, min_count=config.min_count,
                                 max_features=config.max_features).fit(texts).features_)
    step = max(1, len(vocabulary) // args.ngrams)
    ngrams = vocabulary[::step][: args.ngrams]
    teacher = Teacher.from_encoder("embedded-minilm", label_names=["a", "b"], device="cpu")
    print(f"{len(texts)} texts of {np.mean([len(t.split()) for t in texts]):.0f} words on average; vocabulary "
          f"{len(vocabulary)} n-grams, {len(ngrams)} of them timed; torch threads {torch.get_num_threads()}")

    seconds = {"previous": 0.0, "current": 0.0}
    results = {}
    for round_ in range(args.rounds):
        for name in (("previous", "current") if round_ % 2 == 0 else ("current", "previous")):
            cls = PreviousNgramCache if name == "previous" else NgramCache
            took, embeddings, logits = _vocabulary_pass(cls, teacher, ngrams)
            seconds[name] += took
            results[name] = (embeddings, logits)
            print(f"  vocabulary pass, {name}: {took:.1f} s ({len(ngrams) / took:.0f} n-grams/s)")
    logit_gap = float(np.abs(results["previous"][1] - results["current"][1]).max())
    embedding_gap = float(np.abs(results["previous"][0].astype(np.float32) - results["current"][0]).max())
    ratio = seconds["previous"] / seconds["current"]
    rate = len(ngrams) * args.rounds / seconds["current"]
    print(f"vocabulary pass: previous / current = {ratio:.2f}x ({seconds['previous']:.1f} s vs "
          f"{seconds['current']:.1f} s over {args.rounds} rounds); largest difference: logits {logit_gap:.2e}, "
          f"embeddings {embedding_gap:.2e} (float16 storage)")
    print(f"  at {rate:.0f} n-grams/s a 150,000 n-gram vocabulary takes {150_000 / rate / 60:.1f} min here")

    rng = np.random.default_rng(0)
    unseen = [w for w in vocabulary if w not in set(ngrams)]
    batches = [list(rng.choice(unseen, size=10, replace=False)) for _ in range(args.small_calls)]
    small = {"previous": 0.0, "current": 0.0}
    for round_ in range(args.rounds):
        for name in (("previous", "current") if round_ % 2 == 0 else ("current", "previous")):
            cls = PreviousNgramCache if name == "previous" else NgramCache
            small[name] += _small_calls(cls, teacher, batches, args.table_rows)
    print(f"prediction-time passes ({args.small_calls} calls of 10 new n-grams, table of {args.table_rows} rows): "
          f"previous / current = {small['previous'] / small['current']:.2f}x ({small['previous']:.1f} s vs "
          f"{small['current']:.1f} s over {args.rounds} rounds)")


if __name__ == "__main__":
    main()
