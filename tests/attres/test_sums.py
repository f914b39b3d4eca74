"""numpy's own float32 mean and std, made chunk by chunk (``attres.sums``), bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from attres import sums
from attres.inputs import Standardizer


@pytest.mark.parametrize("shape", [(1, 1, 8, 8), (7, 1, 32, 48), (300, 1, 16, 16), (65, 3, 32, 48),
                                   (129, 2, 16, 16), (40, 3, 128, 128)])  # fmt: skip
@pytest.mark.parametrize("leaf", [1 << 10, 1 << 13, sums.LEAF])
def test_chunked_statistics_are_numpys_bit_for_bit(shape, leaf, monkeypatch) -> None:
    """Offsets and scales far from 0 and 1 make float32 rounding show; a chunk of ``leaf``
    numbers (smaller than numpy's buffer, or larger) splits the rows anywhere."""
    monkeypatch.setattr(sums, "LEAF", leaf)
    rng = np.random.default_rng(sum(shape) + leaf)
    x = (rng.normal(size=shape) * rng.uniform(1, 20) + rng.uniform(-30, 30)).astype(np.float32)
    fetched = []

    def fetch(start: int, stop: int) -> np.ndarray:
        fetched.append(stop - start)
        return x[start:stop]

    mine = Standardizer.fit_rows(fetch, len(x), x.shape[1])
    assert (mine.mean, mine.std) == (Standardizer.fit(x).mean, Standardizer.fit(x).std)
    if leaf < x[0].size * 4:
        assert max(fetched) < len(x)  # never the whole array at once
