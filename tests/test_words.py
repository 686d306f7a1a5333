"""The word splitter reproduces the teacher tokenizer's words (BERT pre-tokenizer) and offsets."""

import pytest

from kdcore.words import split_words

TEXTS = [
    "A three-hour cinema master class.",
    "Café naïve 😀 電影很好! Don't $5 a-b x<y> wow...",
    "Zoë's «quoted» text — em dash… and_underscore 1,000.5 ½ ™",
    "tab\there\u200bzero width",
    "ﬁne ligature İstanbul ß",
    "",
    "   ",
]


def _tokenizer_words(tokenizer, text):
    encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    spans = {}
    for word_id, (start, end) in zip(encoded.word_ids(), encoded["offset_mapping"]):
        span = spans.setdefault(word_id, [start, end])
        span[1] = end
    return [tuple(s) for s in spans.values()]


@pytest.mark.parametrize("text", TEXTS)
def test_spans_match_tokenizer_words(tiny_teacher, text):
    ours = [(w.start, w.end) for w in split_words(text)]
    assert ours == _tokenizer_words(tiny_teacher.tokenizer, text)


def test_normalised_forms_and_offsets():
    text = "Café NAÏVE 😀 電影!"
    words = split_words(text)
    assert [w.text for w in words] == ["cafe", "naive", "😀", "電", "影", "!"]
    for word in words:
        assert text[word.start:word.end].lower().startswith(word.text[0]) or word.text in ("cafe", "naive")
    assert text[words[0].start:words[0].end] == "Café"
    assert text[words[2].start:words[2].end] == "😀"


def test_punctuation_is_split_and_case_kept_when_asked():
    assert [w.text for w in split_words("Don't!", lowercase=False)] == ["Don", "'", "t", "!"]
