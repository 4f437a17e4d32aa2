"""The distribution maths of the tape (pure): quantile draws from hashes, splits, bridges, taker orders.

Every draw takes its uniform variate (or its hash key) as a parameter, so a value is recomputed from its key
alone, in any order. The count hierarchy (``hierarchy.py``) and the fill generator (``tape.py``) use them.
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist
from typing import Final

from okx_simulator.rng import mix, unit

__all__ = [
    "binomial_quantile",
    "brownian_bridge",
    "hashed_gauss",
    "inv_norm",
    "multinomial",
    "poisson_quantile",
    "prefix_sums",
    "taker_orders",
]

_NORMAL: Final = NormalDist()


def prefix_sums(counts: list[int]) -> list[int]:
    """``[0, c0, c0 + c1, ...]``: the number of items before each part (``len = parts + 1``)."""
    out = [0]
    for c in counts:
        out.append(out[-1] + c)
    return out


def multinomial(total: int, weights: list[float], key: int) -> list[int]:
    """Split ``total`` fills over parts proportionally to ``weights`` (a multinomial by sequential binomials)."""
    if total and not any(w > 0 for w in weights):
        weights = [1.0] * len(weights)  # only when every part is quiet: keep the counts consistent
    suffix = [0.0] * (len(weights) + 1)
    for i in range(len(weights) - 1, -1, -1):
        suffix[i] = suffix[i + 1] + weights[i]
    out: list[int] = []
    left = total
    for i, weight in enumerate(weights):
        if left == 0 or weight <= 0:
            out.append(0)
            continue
        share = weight / suffix[i]
        count = left if share >= 1.0 else binomial_quantile(left, share, unit(mix(key, i)))
        out.append(count)
        left -= count
    return out


def brownian_bridge(x0: float, x1: float, steps: int, sd: float, key: int) -> list[float]:
    """A Brownian bridge from ``x0`` to ``x1`` in ``steps`` steps of standard deviation ``sd``: steps + 1 points."""
    out = [x0]
    value = x0
    for i in range(steps - 1):
        left = steps - i
        value += (x1 - value) / left + sd * math.sqrt((left - 1) / left) * hashed_gauss(mix(key, i))
        out.append(value)
    out.append(x1)
    return out


def taker_orders(rng: random.Random, n: int, p_single: float) -> list[int]:
    """Split ``n`` fills into taker orders of 1..k fills (geometric)."""
    orders: list[int] = []
    left = n
    while left > 0:
        size = 1
        while rng.random() > p_single and size < left and size < 20:
            size += 1
        orders.append(size)
        left -= size
    return orders


def poisson_quantile(mean: float, u: float) -> int:
    """The ``u`` quantile of Poisson(mean): exact up to a mean of 40, normal approximation above."""
    if mean <= 0:
        return 0
    if mean > 40:
        return max(0, round(mean + math.sqrt(mean) * inv_norm(u)))
    k, prob = 0, math.exp(-mean)
    cdf = prob
    while u > cdf and k < 400:
        k += 1
        prob *= mean / k
        cdf += prob
    return k


def binomial_quantile(n: int, p: float, u: float) -> int:
    """The ``u`` quantile of Binomial(n, p): exact for small variances, normal approximation otherwise."""
    if p <= 0.0:
        return 0
    if p > 0.5:
        return n - binomial_quantile(n, 1.0 - p, 1.0 - u)
    mean = n * p
    var = mean * (1.0 - p)
    if var > 25.0:
        return min(n, max(0, round(mean + math.sqrt(var) * inv_norm(u))))
    prob = math.exp(n * math.log1p(-p))
    ratio = p / (1.0 - p)
    k, cdf = 0, prob
    while u > cdf and k < n:
        prob *= (n - k) / (k + 1) * ratio
        k += 1
        cdf += prob
    return k


def inv_norm(u: float) -> float:
    """The standard normal quantile of ``u`` (clamped away from 0 and 1)."""
    return _NORMAL.inv_cdf(min(max(u, 1e-12), 1 - 1e-12))


def hashed_gauss(h: int) -> float:
    """A standard normal variate from the hash ``h`` (Box-Muller)."""
    u1 = max(unit(h), 1e-12)
    u2 = unit(mix(h, 1))
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)
