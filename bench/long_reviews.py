"""Long labelled reviews for timing a user's upload: each text joins ``--per`` Rotten Tomatoes snippets of one label.

    python bench/long_reviews.py --out /tmp/long4k.csv [--n 4000] [--per 8] [--seed 7]
    python -m kdcore distill --data /tmp/long4k.csv --name long4k --teacher runs/demo/teacher --teacher-epochs 0

The texts have the length of long product reviews (8 snippets: about 150 words, 5-95% 109-188) and are for
timing only: the snippets come from every split of the embedded corpus, the demo teacher was trained on some of
them, and eight snippets of one label make an easy text, so accuracy and fidelity on them mean nothing. The
build's ``timings.json`` gives each stage's seconds.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from kdcore.corpora import load_default_corpus  # noqa: E402


def long_reviews(n: int, per: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (text, label name) rows, labels alternating, each text ``per`` distinct snippets of its label."""
    corpus = load_default_corpus()
    texts, labels = [], []
    for split in (corpus.train, corpus.dev, corpus.test):
        texts += list(split.texts)
        labels += list(split.labels)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % len(corpus.label_names)
        picked = rng.choice(np.flatnonzero(labels == label), size=per, replace=False)
        rows.append((" ".join(texts[k] for k in picked), corpus.label_names[label]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="CSV to write (columns text, label).")
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--per", type=int, default=8, help="Snippets joined into one text.")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows = long_reviews(args.n, args.per, args.seed)
    with open(args.out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    words = np.array([len(text.split()) for text, _ in rows])
    print(f"{len(rows)} texts, {words.mean():.0f} words on average (5-95%: {np.percentile(words, 5):.0f}-"
          f"{np.percentile(words, 95):.0f}) -> {args.out}")


if __name__ == "__main__":
    main()
