"""A corpus's own partition (``--protocol predefined``): a CSV of ``utterance, fold, split``.

``split`` is train, validation or test; a partition has one fold or several (EmoBox's folds,
MSP-Podcast's Train/Development/Test1). ``utterance`` names a clip as FEATURES does (its path
under the corpus root, without the extension) or by a longer or shorter path to the same
file: ``downloads/casia/wangzhe/angry/201.wav`` finds ``wangzhe/angry/201``, and
``AudioWAV/1001_DFA_ANG_XX.wav`` finds ``CremaTrain/1001_DFA_ANG_XX``, where one clip
fits. ``partition_from_emobox`` and ``partition_from_msp_podcast`` write such a CSV from
those corpora's own files.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

PARTS = ("train", "validation", "test")
COLUMNS = ("utterance", "fold", "split")
SHOWN = 5  # unmatched utterances named in a message; the rest counted


class PartitionError(ValueError):
    """The partition file cannot be used with these features."""


@dataclass(frozen=True)
class Partition:
    path: str
    folds: tuple[str, ...]  # the fold names as the file gives them, in its order
    rows: dict[tuple[int, str], np.ndarray]  # (fold index, part) -> row indices, sorted
    unmatched: tuple[str, ...]  # utterances of the file that FEATURES does not hold

    def part(self, fold: int, name: str) -> np.ndarray:
        return self.rows.get((fold, name), np.zeros(0, dtype=np.int64))


def read_partition(path: str | Path, utterance_ids: np.ndarray) -> Partition:
    """The partition in ``path`` as row indices into ``utterance_ids``; a clip in two parts
    of one fold, an unknown split name or a fold without training or test rows is refused."""
    path = Path(path)
    if not path.is_file():
        raise PartitionError(f"partition file does not exist: {path}")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise PartitionError(f"{path}: missing columns {sorted(missing)} (need {COLUMNS})")
        lines = list(reader)
    find = _finder(utterance_ids)
    folds: dict[str, int] = {}
    seen: dict[tuple[int, int], int] = {}  # (fold, row) -> line it was given on
    rows: dict[tuple[int, str], list[int]] = {}
    unmatched = []
    for line, entry in enumerate(lines, start=2):
        part = entry["split"].strip().lower()
        if part not in PARTS:
            raise PartitionError(f"{path}:{line}: split {entry['split']!r} is not one of {PARTS}")
        row = find(entry["utterance"].strip())
        if row is None:
            unmatched.append(entry["utterance"].strip())
            continue
        fold = folds.setdefault(entry["fold"].strip(), len(folds))
        if (fold, row) in seen:
            raise PartitionError(
                f"{path}:{line}: {utterance_ids[row]} is listed twice in fold "
                f"{entry['fold'].strip()} (line {seen[fold, row]} too)"
            )
        seen[fold, row] = line
        rows.setdefault((fold, part), []).append(row)
    if not folds:
        raise PartitionError(
            f"{path}: none of its {len(lines)} utterances is in the features"
            + (f" (e.g. {', '.join(unmatched[:SHOWN])})" if unmatched else "")
        )
    for name, fold in folds.items():
        if (fold, "train") not in rows or not {(fold, "test"), (fold, "validation")} & rows.keys():
            raise PartitionError(
                f"{path}: fold {name} needs train rows and test or validation rows"
            )
    return Partition(
        str(path),
        tuple(folds),
        {key: np.asarray(sorted(found), dtype=np.int64) for key, found in rows.items()},
        tuple(unmatched),
    )


def _finder(utterance_ids: np.ndarray):
    """utterance -> its row: the id it is, or ends with (a longer path), or the one id that
    ends with it (a shorter path), tried from the whole path down to its file name
    (EmoBox's ``downloads/cremad/AudioWAV/1001_DFA_ANG_XX.wav`` finds
    ``CremaTrain/1001_DFA_ANG_XX``); None where none fits or several do."""
    exact = {uid: row for row, uid in enumerate(utterance_ids.tolist())}
    tails: dict[str, int | None] = {}  # every "/"-suffix of every id -> its row (None: several)
    for uid, row in exact.items():
        parts = uid.split("/")
        for start in range(1, len(parts)):
            tail = "/".join(parts[start:])
            tails[tail] = row if tail not in tails else None

    def find(utterance: str) -> int | None:
        name = PurePosixPath(utterance.replace("\\", "/"))
        parts = (name.with_suffix("").as_posix() if name.suffix else name.as_posix()).split("/")
        for start in range(len(parts)):  # the whole path, then without its leading folders
            path = "/".join(parts[start:])
            row = exact[path] if path in exact else tails.get(path)
            if row is not None:
                return row
        return None

    return find


def write_partition(entries: list[tuple[str, str, str]], out: str | Path) -> int:
    """Write (utterance, fold, split) rows as a partition CSV; returns how many."""
    with Path(out).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(entries)
    return len(entries)


def partition_from_emobox(corpus_dir: str | Path) -> list[tuple[str, str, str]]:
    """EmoBox's folds of one corpus (``data/<corpus>/fold_<n>/<corpus>_{train,test}_fold_<n>
    .jsonl``, one JSON object a line with its ``wav`` path) as partition rows; EmoBox has no
    validation part."""
    corpus_dir = Path(corpus_dir)
    entries = []
    files = sorted(corpus_dir.glob("fold_*/*_fold_*.jsonl"))
    if not files:
        raise PartitionError(f"no EmoBox fold files (fold_*/*_fold_*.jsonl) under {corpus_dir}")
    for file in files:
        fold = file.parent.name.removeprefix("fold_")
        part = "train" if "_train_fold_" in file.name else "test"
        for line in file.read_text().splitlines():
            if line.strip():
                entries.append((json.loads(line)["wav"], fold, part))
    return entries


MSP_SPLITS = {"Train": "train", "Development": "validation", "Test1": "test"}


def partition_from_msp_podcast(corpus_dir: str | Path) -> list[tuple[str, str, str]]:
    """MSP-Podcast's own partition from ``Labels/labels_consensus.csv``: Train, Development
    (validation) and Test1 as one fold; other test sets (Test2, Test3) left out."""
    table = Path(corpus_dir) / "Labels" / "labels_consensus.csv"
    if not table.is_file():
        raise PartitionError(f"MSP-Podcast's labels are not at {table}")
    with table.open(newline="") as f:
        return [
            (f"Audios/{row['FileName'].strip()}", "1", MSP_SPLITS[row["Split_Set"].strip()])
            for row in csv.DictReader(f)
            if row["Split_Set"].strip() in MSP_SPLITS
        ]
