"""Typed records that cross the engine's boundaries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["Explanation"]


@dataclass
class Explanation:
    """Word-level attribution of one model's prediction for one text.

    Scores are signed and raw (never normalised here); ``scores[i]`` belongs to
    ``words[i]`` whose characters are ``text[spans[i][0]:spans[i][1]]``. Positive scores
    push the model towards ``target``.
    """

    text: str
    words: list[str]
    spans: list[tuple[int, int]]
    scores: np.ndarray
    target: int
    probs: np.ndarray
    method: str
    model_name: str
    label_names: list[str] = field(default_factory=list)
    convergence_delta: float | None = None
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64)
        self.probs = np.asarray(self.probs, dtype=np.float64)
        self.spans = [tuple(map(int, s)) for s in self.spans]
        if not (len(self.words) == len(self.spans) == len(self.scores)):
            raise ValueError(
                f"Explanation needs one score and one span per word; got {len(self.words)} words, "
                f"{len(self.spans)} spans, {len(self.scores)} scores."
            )

    @property
    def target_name(self) -> str:
        return self.label_names[self.target] if self.label_names else str(self.target)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["scores"] = self.scores.tolist()
        out["probs"] = self.probs.tolist()
        out["spans"] = [list(s) for s in self.spans]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Explanation":
        return cls(**{**data, "spans": [tuple(s) for s in data["spans"]]})
