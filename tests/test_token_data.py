"""Token data: the CoNLL / JSONL readers on good and bad files, the BIO helpers, the split, WNUT-16."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kdcore.tasks.token.bio import entities, iob1_to_bio, is_valid_sequence, viterbi_bio
from kdcore.data import DataError
from kdcore.tasks.token.data import (TokenDataset, load_wnut16_corpus, looks_like_token_file, read_conll, read_token_jsonl,
                               read_tokens, split_token_dataset)

GOOD = """-DOCSTART- -X- O O

EU\tB-org
rejects\tO
German\tB-misc
call\tO

Peter\tB-per
Blackburn\tI-per
\t
BRUSSELS\tB-loc
"""


def test_conll_reads_sentences_tags_and_skips_docstart(tmp_path):
    path = tmp_path / "a.conll"
    path.write_text(GOOD, encoding="utf-8")
    data = read_conll(path)
    assert data.sentences == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"], ["BRUSSELS"]]
    assert data.label_names == ["O", "B-loc", "I-loc", "B-misc", "I-misc", "B-org", "I-org", "B-per", "I-per"]
    assert data.tag_names(1) == ["B-per", "I-per"]
    assert data.gold_entities()[0] == [("org", 0, 1), ("misc", 2, 3)]
    assert looks_like_token_file(path)


def test_conll_takes_the_last_of_several_space_separated_columns(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n", encoding="utf-8")
    data = read_conll(path)
    assert data.tag_names(0) == ["B-ORG", "O"]
    assert looks_like_token_file(path)


def test_iob1_is_converted_to_bio(tmp_path):
    path = tmp_path / "iob1.conll"
    path.write_text("U.N.\tI-ORG\nofficial\tO\nEkeus\tI-PER\nheads\tO\nfor\tO\nBaghdad\tI-LOC\nParis\tB-LOC\n",
                    encoding="utf-8")
    data = read_conll(path)
    assert data.tag_names(0) == ["B-ORG", "O", "B-PER", "O", "O", "B-LOC", "B-LOC"]
    assert any("IOB1" in w for w in data.report.warnings)
    assert iob1_to_bio(["I-x", "I-x", "B-x", "O", "I-y"]) == ["B-x", "I-x", "B-x", "O", "B-y"]


@pytest.mark.parametrize("content, expected", [
    ("EU\tB-org\trejects\nwith\tO\n", "columns"),                  # ragged: 3 columns then 2
    ("EU\tB-org\nrejects\n", "no tag"),                           # a word without a tag
    ("EU\tS-org\nrejects\tO\n", "not in a scheme"),               # BIOES tag
    ("EU\tB-org\nrejects\tO\n\nsays\tO\nhe\tI-per\nwas\tB-per\n", "break the BIO scheme"),  # mixed, not IOB1
    ("-DOCSTART-\tO\n\n\n", "no sentences"),
])
def test_conll_bad_files_are_refused_with_the_line(tmp_path, content, expected):
    path = tmp_path / "bad.conll"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=expected):
        read_conll(path)


def test_conll_ragged_error_names_the_line(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("a\tO\nb\tO\nc d\tO\textra\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 3"):
        read_conll(path)


def test_jsonl_good_and_bad(tmp_path):
    good = tmp_path / "t.jsonl"
    good.write_text("\n".join(json.dumps(r) for r in [
        {"tokens": ["Ann", "Lee", "ran"], "tags": ["B-per", "I-per", "O"]},
        {"tokens": ["in", "Oslo"], "tags": ["O", "B-loc"]},
    ]), encoding="utf-8")
    data = read_tokens(good)
    assert len(data) == 2 and data.tag_names(1) == ["O", "B-loc"]
    assert looks_like_token_file(good)
    for row, expected in [({"tokens": [], "tags": []}, "empty sentence"),
                          ({"tokens": ["a", "b"], "tags": ["O"]}, "2 tokens but 1 tags"),
                          ({"tokens": ["a"], "tags": [0]}, "strings"),
                          ({"words": ["a"]}, "'tokens'")]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text(json.dumps({"tokens": ["ok"], "tags": ["O"]}) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
        with pytest.raises(DataError, match=expected):
            read_token_jsonl(bad)


def test_text_csv_is_not_a_token_file(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\ngood film,pos\n", encoding="utf-8")
    assert not looks_like_token_file(path)


def test_duplicates_dropped_and_split_is_order_free(tmp_path):
    rows = [[f"w{i}", "x"] for i in range(40)]
    data = TokenDataset(rows, [[0, 0]] * 40, ["O", "B-a", "I-a"], name="d")
    a = split_token_dataset(data, seed=1, dev_fraction=0.25, test_fraction=0.25)
    b = split_token_dataset(data.subset(list(reversed(range(40)))), seed=1, dev_fraction=0.25, test_fraction=0.25)
    assert len(a.test) == 10 and len(a.dev) == 10 and len(a.train) == 20
    assert sorted(map(tuple, a.test.sentences)) == sorted(map(tuple, b.test.sentences))
    assert not set(map(tuple, a.test.sentences)) & set(map(tuple, a.train.sentences))


def test_with_label_order_reindexes():
    data = TokenDataset([["a", "b"]], [[1, 0]], ["O", "B-x", "I-x"])
    other = data.with_label_order(["B-x", "I-x", "O"])
    assert other.tag_names(0) == data.tag_names(0) == ["B-x", "O"]


def test_entities_reads_invalid_i_as_a_start():
    assert entities(["O", "I-x", "I-x", "B-y", "I-x"]) == [("x", 1, 3), ("y", 3, 4), ("x", 4, 5)]


def test_viterbi_never_emits_an_invalid_sequence():
    names = ["O", "B-a", "I-a", "B-b", "I-b"]
    rng = np.random.default_rng(0)
    for trial in range(500):
        n = int(rng.integers(1, 12))
        scores = rng.normal(scale=3.0, size=(n, len(names)))
        if trial % 3 == 0:  # scores that favour I- tags everywhere, the hardest case
            scores[:, [2, 4]] += 5.0
        path = viterbi_bio(scores, names)
        tags = [names[i] for i in path]
        assert is_valid_sequence(tags), tags
        if is_valid_sequence([names[i] for i in scores.argmax(1)]):
            assert list(path) == list(scores.argmax(1))  # a valid argmax path is the best path


def test_viterbi_is_the_best_valid_path_by_brute_force():
    import itertools

    names = ["O", "B-a", "I-a", "B-b", "I-b"]
    rng = np.random.default_rng(1)
    for _ in range(30):
        scores = rng.normal(size=(4, 5))
        best = max((p for p in itertools.product(range(5), repeat=4) if is_valid_sequence([names[i] for i in p])),
                   key=lambda p: sum(scores[k, i] for k, i in enumerate(p)))
        assert tuple(viterbi_bio(scores, names)) == best


def test_wnut16_embedded_corpus():
    corpus = load_wnut16_corpus()
    assert corpus.report.rows_read == 2394
    types = {n[2:] for n in corpus.label_names if n != "O"}
    assert len(types) == 10 and "person" in types
    total = len(corpus.train) + len(corpus.dev) + len(corpus.test)
    assert total == 2394 - len(corpus.report.duplicate_rows)
    assert abs(len(corpus.test) - round(0.2 * total)) <= 1
    again = load_wnut16_corpus()
    assert again.test.content_hash() == corpus.test.content_hash()
