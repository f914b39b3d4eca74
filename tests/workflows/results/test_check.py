"""attres-flow check: the comparison of one re-run with a published table."""

from __future__ import annotations

import pytest

from workflows.results.check import compare, published_row


def test_check_compares_a_run_with_the_published_spread(tmp_path) -> None:
    (tmp_path / "results.csv").write_text(
        "table,protocol,model,paper_accuracy,wa_mean,wa_std,ua_mean,macro_f1_mean,n_runs\n"
        "Table 1,paper,att-Res,69.8,72.0,1.0,72.1,71.9,5\n"
        "Table 2,paper,att-Res,69.8,72.0,1.0,72.1,71.9,5\n"
        "Table 2,paper,CNN,46.9,,,,,0\n"
    )
    row = published_row(tmp_path, "att-Res", "paper")
    near, far = compare(0.70, 240, row), compare(0.60, 240, row)
    # one 240-clip test set: ~3 points of sampling noise, wider than the runs' 1-point spread
    assert near.tolerance == pytest.approx(2 * 100 * (0.7 * 0.3 / 240) ** 0.5)
    assert near.within and not far.within and "OUTSIDE" in str(far)
    with pytest.raises(ValueError, match="no finished CNN runs"):
        published_row(tmp_path, "CNN", "paper")
