"""Reading and checking a sequence corpus: texts with one label each, split into train/dev/test."""

from __future__ import annotations

from typing import Any

from ...config import DataSource, RunSpec

__all__ = ["load_corpus", "check_corpus", "split_rows"]


def load_corpus(source: DataSource):
    """The train/dev/test (+ unlabelled) corpus a DataSource names; DataError says what is wrong with a file."""
    from ...corpora import load_corpus as load_named_corpus
    from ...data import DataError, split_dataset
    from ...readers import read_any

    from ...labels import check_labels

    if source.path is None:
        return load_named_corpus(source.corpus, seed=source.seed)
    dataset = read_any(source.path, **source.reader_options())
    # A broken label column (text spilled into it) is named as such, before the split trips over it.
    errors = [f.message for f in check_labels(dataset) if f.level == "error"]
    if errors:
        raise DataError(" ".join(errors))
    return split_dataset(dataset, seed=source.seed)


def check_corpus(spec: RunSpec, corpus) -> tuple[Any, list]:
    """Refuse what cannot make a sound run, before any work; returns the corpus to use and the findings.

    A bare encoder needs gold labels to train its head. The label column is checked
    (:func:`kdcore.labels.check_labels`): errors are raised, classes with too few training rows are
    dropped from every split and the finding is kept (it is written into the run's metrics).
    """
    from ...data import Corpus, DataError, TextDataset, reader_findings
    from ...labels import check_labels, drop_classes, rare_classes

    if not isinstance(corpus, Corpus):  # any object with train / dev / test (/ unlabelled) splits
        unlabelled = getattr(corpus, "unlabelled", None) or TextDataset([], None, [], name="unlabelled")
        corpus = Corpus(corpus.train, getattr(corpus, "dev", None), getattr(corpus, "test", None), unlabelled,
                        getattr(corpus, "report", None))
    train = corpus.train
    if spec.teacher_is_encoder and not train.has_labels:
        raise DataError("These texts have no labels, so a bare encoder's new classification head cannot be trained. "
                        "Give a trained classifier as the teacher (--teacher FOLDER, without --encoder), or add a "
                        "label column (--label-column).")
    findings = check_labels(train)
    errors = [f.message for f in findings if f.level == "error"]
    if errors:
        raise DataError(" ".join(errors))
    rare = rare_classes(train) if train.has_labels else []
    if rare:
        corpus = Corpus(*(drop_classes(split, rare) if split is not None and split.labels is not None else split
                                for split in (corpus.train, corpus.dev, corpus.test, corpus.unlabelled)),
                              corpus.report)
    # What the reader found (empty texts, spilled label cells, duplicates...) leads the findings.
    return corpus, reader_findings(corpus.report) + [f.to_dict() for f in findings]




def split_rows(dataset) -> list[dict]:
    """A split as the JSON rows a run stores: {"text", "label"} (label None without gold labels)."""
    labels = dataset.labels if dataset.labels is not None else [None] * len(dataset)
    return [{"text": t, "label": (int(y) if y is not None else None)} for t, y in zip(dataset.texts, labels)]
