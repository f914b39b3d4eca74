"""Location: the one atomic write, and the one exclusive create."""

from __future__ import annotations

import os
import time

import pytest

from featurize.config import FeatureConfig
from featurize.location import TMP_PREFIX, Location
from featurize.store import prepare_store


def test_write_replaces_whole_and_create_refuses_what_exists(tmp_path):
    target = Location(tmp_path / "sub" / "settings.json")
    target.write("one")
    target.write("two")
    assert target.read() == b"two" and target.exists()
    assert not Location(tmp_path / "new.json").exists()
    assert Location(tmp_path / "new.json").create("first")
    assert not Location(tmp_path / "new.json").create("second")  # another run got there first
    assert Location(tmp_path / "new.json").read() == b"first"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)] == []


def test_write_with_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path):
    target = Location(tmp_path / "shard.parquet")
    target.write_with(lambda f: f.write(b"whole"))

    def half_then_fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        target.write_with(half_then_fail)
    assert target.read() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard.parquet"]


def test_featurize_clears_old_temporaries_only(tmp_path):
    features = tmp_path / "features"
    features.mkdir()
    old, young = features / f"{TMP_PREFIX}old.part", features / f"{TMP_PREFIX}young.part"
    old.write_bytes(b"killed long ago")
    young.write_bytes(b"another run's shard in flight")
    hours_ago = time.time() - 2 * 3600
    os.utime(old, (hours_ago, hours_ago))
    prepare_store(str(features), FeatureConfig(image_size=8), ("angry",))
    assert not old.exists() and young.exists()
