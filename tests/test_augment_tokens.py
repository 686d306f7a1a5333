"""The token transfer-set helpers: mention replacement keeps the entity types and the context words;
tag-keeping substitution only touches words outside entities; bad input is refused."""

from __future__ import annotations

import pytest

from kdcore.augment_tokens import augment_token_sentences, mention_replacement, tag_keeping_substitution

SENTENCES = [["I", "met", "John", "Smith", "in", "Paris"], ["Mary", "flew", "to", "New", "York"], ["so", "tired"]]
TAGS = [["O", "O", "B-per", "I-per", "O", "B-loc"], ["B-per", "O", "O", "B-loc", "I-loc"], ["O", "O"]]
MENTIONS = {"per": {("John", "Smith"), ("Mary",)}, "loc": {("Paris",), ("New", "York")}}


def test_mention_replacement_swaps_spans_of_the_same_type_only():
    variants = mention_replacement(SENTENCES, TAGS, copies=5, mention_prob=1.0, seed=0)
    assert variants and all(tuple(v) not in {tuple(s) for s in SENTENCES} for v in variants)
    assert len({tuple(v) for v in variants}) == len(variants)  # no duplicates
    for variant in variants:
        if variant[:2] == ["I", "met"]:  # context words stay, mentions come from the same type's pool
            rest = variant[2:]
            person = next(p for p in MENTIONS["per"] if tuple(rest[:len(p)]) == p)
            assert rest[len(person)] == "in" and tuple(rest[len(person) + 1:]) in MENTIONS["loc"]
    assert all(v != ["so", "tired"] for v in variants)  # no entity: nothing to replace


def test_tag_keeping_substitution_leaves_entities_in_place():
    variants = tag_keeping_substitution(SENTENCES, TAGS, copies=20, word_prob=1.0, seed=0)
    assert variants
    originals = {len(s): (s, t) for s, t in zip(SENTENCES, TAGS)}
    for variant in variants:
        words, tags = originals[len(variant)]
        for new, old, tag in zip(variant, words, tags):
            if tag != "O":
                assert new == old
            else:
                assert new[:1].isupper() == old[:1].isupper()  # same shape class


def test_augment_combines_both_and_refuses_mismatched_tags():
    out = augment_token_sentences(SENTENCES, TAGS, mention_copies=2, word_copies=1, word_prob=0.5)
    assert len({tuple(s) for s in out}) == len(out)
    with pytest.raises(ValueError, match="one tag per word"):
        mention_replacement(SENTENCES, [t[:-1] for t in TAGS])
    with pytest.raises(ValueError, match="tag row"):
        tag_keeping_substitution(SENTENCES, TAGS[:1])


def test_a_token_run_with_mention_copies_adds_the_variants_to_its_transfer_set():
    """DistillConfig.mention_copies puts the mention-replacement and substitution variants after the word-swap
    ones, each sentence once; 0 (the default) leaves the transfer set as it was; untagged sentences are refused."""
    from dataclasses import replace

    from conftest import make_toy_token_corpus
    from kdcore.config import DistillConfig, RunSpec
    from kdcore.tasks import get_task

    task, corpus = get_task("token"), make_toy_token_corpus(n_sentences=40)
    plain = RunSpec("plain", task="token", distill=DistillConfig(augment_copies=1))
    more = RunSpec("more", task="token", distill=DistillConfig(augment_copies=1, mention_copies=2))
    base, grown = task.transfer_set(plain, corpus), task.transfer_set(more, corpus)
    assert grown[:len(base)] == base and len(grown) > len(base)
    assert len({tuple(s) for s in grown}) == len(grown)
    gold = [corpus.train.tag_names(i) for i in range(len(corpus.train))]
    expected = augment_token_sentences(corpus.train.sentences, gold, mention_copies=2, seed=0)
    assert all(s in expected for s in grown[len(base):])
    untagged = replace(corpus, train=replace(corpus.train, tags=None))
    with pytest.raises(ValueError, match="mention_copies"):
        task.transfer_set(more, untagged)
    with pytest.raises(ValueError):
        DistillConfig(mention_copies=-1)
