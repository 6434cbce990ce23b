"""Intervals for figures measured on a sample (benchmarks quote them beside every rate)."""

from __future__ import annotations

import math


def wilson(p: float | None, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    """95 % Wilson score interval of a rate p measured on n examples."""
    if p is None or n <= 0:
        return None, None
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return round(max(0.0, c - h), 4), round(min(1.0, c + h), 4)
