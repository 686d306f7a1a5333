"""95% intervals for the numbers of a run, so that a 300-text test split reads as what it is.

Proportions (accuracy, fidelity: a share of texts) get the Wilson score interval; every other
statistic (macro-F1, a mean agreement over texts, the difference between two models on the same
texts) gets a percentile bootstrap over the texts with a fixed seed, so the same run always shows
the same interval.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

__all__ = ["Z95", "N_BOOTSTRAP", "DEFINITIONS", "wilson", "bootstrap", "bootstrap_mean", "paired_difference",
           "format_interval"]

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
N_BOOTSTRAP = 1000
DEFINITIONS = {
    "95% interval": "For accuracy and fidelity (shares of texts): the Wilson score interval. For macro-F1, "
                    "mean agreement and differences between two models on the same texts: the 2.5th and "
                    f"97.5th percentiles over {N_BOOTSTRAP} bootstrap resamples of the texts (seed 0).",
}


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n``; (NaN, NaN) for ``n == 0``."""
    if n <= 0:
        return float("nan"), float("nan")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in 0..n, got {successes} of {n}.")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _resamples(n: int, n_boot: int, seed: int) -> list[np.ndarray]:
    """``n_boot`` index arrays drawn from ``range(n)`` with replacement (the seeded draws every
    bootstrap here makes, so the same data always gives the same interval)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n, size=n) for _ in range(n_boot)]


def _percentile_interval(draws: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` interval of the finite ``draws``; (NaN, NaN) when there are none."""
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap(statistic: Callable[[np.ndarray], float], n: int, n_boot: int = N_BOOTSTRAP, seed: int = 0,
              level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``statistic(indices)`` over ``n_boot`` resamples of ``range(n)`` with
    replacement. ``statistic`` takes an index array and returns a number; NaN draws are left out."""
    if n <= 0:
        return float("nan"), float("nan")
    draws = np.array([statistic(idx) for idx in _resamples(n, n_boot, seed)], dtype=np.float64)
    return _percentile_interval(draws, level)


def bootstrap_mean(values: Sequence[float], n_boot: int = N_BOOTSTRAP, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of the mean of ``values`` (NaN values dropped first): :func:`bootstrap`'s
    draws, averaged all at once."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    means = values[np.stack(_resamples(values.size, n_boot, seed))].mean(axis=1)
    return _percentile_interval(means, level)


def paired_difference(a: Sequence[float], b: Sequence[float], **options) -> dict:
    """Mean of ``a - b`` over the same texts (e.g. 1/0 agreement with the teacher of a student and
    of its twin) with a bootstrap interval that resamples texts, keeping each pair together."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {a.size} vs {b.size}.")
    diff = a - b
    low, high = bootstrap(lambda idx: float(diff[idx].mean()), diff.size, **options)
    return {"difference": float(diff.mean()) if diff.size else float("nan"), "ci": [low, high]}


def format_interval(interval, digits: int = 3) -> str:
    """``"0.815–0.856"``; an empty string for a missing or non-finite interval."""
    if interval is None or len(interval) != 2:
        return ""
    low, high = interval
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return f"{low:.{digits}f}–{high:.{digits}f}"
