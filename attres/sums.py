"""numpy's float32 ``mean`` and ``std`` of an array too large to hold, bit for bit.

A network's global standardizer is ``float(x.mean())`` and ``float(x.std())`` of its
training rows (``attres.inputs.Standardizer.fit``); a grid trial that makes its rows batch by
batch (``attres.inputs.Rows``) never holds ``x``. The records must not change with the data
path, so the statistics are computed here in numpy's own order of float32 additions, chunk
by chunk:

* over a C-contiguous array (one channel), numpy sums the whole buffer pairwise: halves
  rounded down to a multiple of 8, down to 128 numbers (``pairwise_sum`` in numpy's
  ``loops_utils.h.src``); this recursion is followed here down to chunks of ``LEAF``
  numbers, which numpy itself sums;
* over one channel of several (a strided view), numpy copies whole rows into its buffer
  (``np.getbufsize()`` numbers, at least one row) and adds each buffer's pairwise sum to a
  running total;
* ``std`` then sums the squared differences of a fresh contiguous copy: pairwise again.

``tests/attres/test_sums.py`` checks these against ``np.mean`` and ``np.std`` themselves.

>>> x = np.random.default_rng(0).normal(3, 5, size=(7, 1, 16, 16)).astype(np.float32)
>>> mean, std = channel_statistics(lambda start, stop: x[start:stop], len(x), 1)
>>> bool(mean[0] == x.mean()), bool(std[0] == x.std())
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

LEAF = 1 << 20  # numbers summed by one numpy call: 64 rows of a 128x128 image
ZERO = np.float32(0)

Fetch = Callable[[int, int], np.ndarray]  # (start, stop) -> rows start..stop-1, (n, C, H, W)


def channel_statistics(fetch: Fetch, n: int, channels: int) -> tuple[list, list]:
    """Per channel, ``x[:, c].mean()`` and ``x[:, c].std()`` (for one channel, ``x.mean()``
    and ``x.std()``) of the (n, C, H, W) float32 rows ``fetch`` returns, as numpy computes
    them; at most ``LEAF`` numbers of each channel are held at once."""
    per_row = int(np.prod(fetch(0, 1).shape[2:]))
    count = np.intp(n * per_row)
    if channels == 1:
        totals = [_pairwise(fetch, n, per_row, lambda rows: rows[:, :1])]
    else:
        totals = _row_by_row(fetch, n, per_row, channels)
    means = [_divide(total, count) for total in totals]
    stds = []
    for c, total in enumerate(totals):
        # _var: the sum over a keepdims array, divided in place, subtracted, squared, summed
        mean = np.full((1, 1), total)
        np.true_divide(mean, count, out=mean, casting="unsafe")
        squares = _pairwise(fetch, n, per_row, lambda rows, c=c, m=mean: _squared(rows, c, m))
        stds.append(np.float32(np.sqrt(_divide(squares, count))))
    return means, stds


def _squared(rows: np.ndarray, channel: int, mean: np.ndarray) -> np.ndarray:
    difference = rows[:, channel] - mean.reshape(())  # float32, a fresh contiguous array
    return np.multiply(difference, difference, out=difference)


def _divide(total: np.float32, count: np.intp) -> np.float32:
    """``_mean``'s last step on a scalar: ``ret.dtype.type(ret / rcount)``."""
    return total.dtype.type(total / count)


def _pairwise(fetch: Fetch, n: int, per_row: int, pick: Callable) -> np.float32:
    """numpy's pairwise float32 sum of the flat buffer of ``pick(rows)`` over all n rows."""

    def numbers(start: int, size: int) -> np.ndarray:
        first, last = start // per_row, (start + size - 1) // per_row + 1
        flat = np.ascontiguousarray(pick(fetch(first, last)), dtype=np.float32).reshape(-1)
        offset = start - first * per_row
        return flat[offset : offset + size]

    def total(start: int, size: int) -> np.float32:
        if size <= LEAF:
            return np.add.reduce(numbers(start, size), initial=ZERO)
        half = size // 2
        half -= half % 8
        return np.float32(total(start, half) + total(start + half, size - half))

    return total(0, n * per_row)


def _row_by_row(fetch: Fetch, n: int, per_row: int, channels: int) -> list[np.float32]:
    """Per channel, numpy's sum over a strided channel view: the rows gathered in groups
    that fill its buffer (``np.getbufsize()`` numbers, whole rows, at least one), each
    group's pairwise sum added to a running float32 total in row order."""
    totals = [ZERO] * channels
    group = max(1, np.getbufsize() // per_row)  # rows per buffer
    step = group * max(1, LEAF // (group * per_row * channels))
    for start in range(0, n, step):
        rows = fetch(start, min(start + step, n))
        for c in range(channels):
            channel = np.ascontiguousarray(rows[:, c]).reshape(len(rows), -1)
            for first in range(0, len(rows), group):
                part = channel[first : first + group].reshape(-1)
                totals[c] = np.float32(totals[c] + np.add.reduce(part, initial=ZERO))
    return totals
