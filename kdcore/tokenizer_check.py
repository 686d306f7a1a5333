"""Whether a tokenizer belongs to the model it is loaded with.

A tokenizer from another model with the same vocabulary size loads without an error and feeds the
model wrong ids: every prediction is then silently wrong. What can be checked is checked here: the
tokenizer's ids fit the model's embeddings, the special token ids the model's config names (padding,
begin, end, separator) are the tokenizer's, a ``tokenizer_class`` the config names is the tokenizer's,
and a teacher kd-lens saved records its tokenizer's fingerprint in its config (``TOKENIZER_RECORD``),
which must match the tokenizer found beside it. The fingerprint also keys the caches of teacher
outputs, so two teachers with the same weights and different tokenizers never share numbers.
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["TOKENIZER_RECORD", "TokenizerMismatch", "tokenizer_fingerprint", "tokenizer_problems", "check_tokenizer"]

# The model config attribute in which a saved teacher records its tokenizer's fingerprint.
TOKENIZER_RECORD = "kdlens_tokenizer_sha256"
_SPECIAL = ("pad", "bos", "eos", "sep", "cls", "unk", "mask")


class TokenizerMismatch(ValueError):
    """The tokenizer found with a model is not that model's; the message says what differs and what to do."""


def tokenizer_fingerprint(tokenizer) -> str:
    """sha256 over the vocabulary (each token and its id), the special tokens' ids and the normalizer and
    pre-tokenizer settings: equal for the same tokenizer saved and loaded again, different for another."""
    cached = getattr(tokenizer, "_kdlens_fingerprint", None)
    if cached:
        return cached
    digest = hashlib.sha256(b"kd-lens tokenizer v1\x00")
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: (item[1], item[0]))
    digest.update(json.dumps(vocab, ensure_ascii=False).encode("utf-8"))
    digest.update(json.dumps({name: getattr(tokenizer, f"{name}_token_id", None) for name in _SPECIAL}).encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        pipeline = json.loads(backend.to_str())
        digest.update(json.dumps([pipeline.get("normalizer"), pipeline.get("pre_tokenizer")], sort_keys=True).encode())
    fingerprint = digest.hexdigest()
    try:
        tokenizer._kdlens_fingerprint = fingerprint
    except AttributeError:  # pragma: no cover - a tokenizer that takes no new attributes is hashed every time
        pass
    return fingerprint


def tokenizer_problems(model_config, tokenizer) -> list[str]:
    """Every sign that ``tokenizer`` is not the tokenizer of the model whose config is ``model_config``
    (empty when none is found)."""
    problems = []
    vocab_size = getattr(model_config, "vocab_size", None)
    if vocab_size and len(tokenizer) > vocab_size:
        problems.append(f"the tokenizer has {len(tokenizer)} tokens but the model's embeddings only {vocab_size}")
    for name in ("pad", "bos", "eos", "sep", "cls"):
        wanted = getattr(model_config, f"{name}_token_id", None)
        found = getattr(tokenizer, f"{name}_token_id", None)
        if isinstance(wanted, int) and found is not None and wanted != found:
            problems.append(f"the model's {name} token id is {wanted} but the tokenizer's is {found}")
    named = getattr(model_config, "tokenizer_class", None)
    own = type(tokenizer).__name__
    if named and own != "PreTrainedTokenizerFast" and named.removesuffix("Fast") != own.removesuffix("Fast"):
        problems.append(f"the model's config names the tokenizer class {named} but the tokenizer is a {own}")
    recorded = getattr(model_config, TOKENIZER_RECORD, None)
    if recorded and recorded != tokenizer_fingerprint(tokenizer):
        problems.append("the model was saved with another tokenizer (its recorded vocabulary fingerprint differs)")
    return problems


def check_tokenizer(model_config, tokenizer, source: str) -> None:
    """Refuse (TokenizerMismatch) a tokenizer that :func:`tokenizer_problems` finds is not the model's."""
    problems = tokenizer_problems(model_config, tokenizer)
    if problems:
        raise TokenizerMismatch(
            f"The tokenizer found with {source!r} is not this model's: {'; '.join(problems)}. It would feed the "
            "model wrong ids and every prediction would be wrong. Put the tokenizer files the model was trained "
            "with (tokenizer.json, vocab.txt, tokenizer_config.json, special_tokens_map.json) beside its weights.")
