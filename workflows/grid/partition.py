"""A corpus's own partition (``--protocol predefined``): a CSV of ``utterance, fold, split``.

``split`` is train, validation or test; a partition has one fold or several (EmoBox's folds,
MSP-Podcast's Train/Development/Test1). ``utterance`` names a clip as FEATURES does (its path
under the corpus root, without the extension), or by a longer path ending in that id
(``downloads/casia/wangzhe/angry/201.wav`` finds ``wangzhe/angry/201``), or by a shorter one
that ends one id only, or by a file name that one id and one entry of the file have
(``downloads/cremad/AudioWAV/1001_DFA_ANG_XX.wav`` finds ``CremaTrain/1001_DFA_ANG_XX``,
counted as matched by name). ``partition_from_emobox`` and ``partition_from_msp_podcast``
write such a CSV from those corpora's own files.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
    by_name: int = 0  # utterances found by their file name alone (``_finder``)

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
    # a file name's entries per fold (a clip is listed once in every fold of EmoBox's files)
    names = Counter((e["fold"].strip(), _path_parts(e["utterance"])[-1]) for e in lines)
    find = _finder(utterance_ids, names)
    folds: dict[str, int] = {}
    seen: dict[tuple[int, int], int] = {}  # (fold, row) -> line it was given on
    rows: dict[tuple[int, str], list[int]] = {}
    unmatched, by_name = [], 0
    for line, entry in enumerate(lines, start=2):
        part = entry["split"].strip().lower()
        if part not in PARTS:
            raise PartitionError(f"{path}:{line}: split {entry['split']!r} is not one of {PARTS}")
        row, loose = find(entry["utterance"], entry["fold"].strip())
        by_name += loose
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
        by_name,
    )


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")


def _path_parts(utterance: str) -> list[str]:
    """An entry's path as folders and a name, its audio extension (if any) dropped."""
    path = utterance.strip().replace("\\", "/")
    if path.lower().endswith(AUDIO_SUFFIXES):
        path = path.rsplit(".", 1)[0]
    return path.split("/")


def _finder(utterance_ids: np.ndarray, entry_names: Counter) -> Callable:
    """entry -> its row: the id it is or ends with, else the one id ending with it, else the
    one id with its file name where no other entry of its fold has that name; None
    otherwise. So a
    partition of more speakers than FEATURES holds never lands on another speaker's clip of
    the same name (CASIA's 201.wav is in every speaker's folders)."""
    exact = {uid: row for row, uid in enumerate(utterance_ids.tolist())}
    tails: dict[str, int | None] = {}  # every "/"-suffix of every id -> its row (None: several)
    for uid, row in exact.items():
        parts = uid.split("/")
        for start in range(1, len(parts)):
            tail = "/".join(parts[start:])
            tails[tail] = row if tail not in tails else None

    def find(utterance: str, fold: str) -> tuple[int | None, bool]:
        """(row or None, whether found by the file name alone)."""
        parts = _path_parts(utterance)
        for start in range(len(parts)):  # an id the entry ends with, longest first
            row = exact.get("/".join(parts[start:]))
            if row is not None:
                return row, False
        whole = "/".join(parts)
        if len(parts) > 1 and tails.get(whole) is not None:  # an id ending with the entry
            return tails[whole], False
        name = parts[-1]
        if entry_names[fold, name] == 1 and tails.get(name) is not None:  # one on each side
            return tails[name], True
        return None, False

    return find


def write_partition(entries: list[tuple[str, str, str]], out: str | Path) -> int:
    """Write (utterance, fold, split) rows as a partition CSV; returns how many."""
    if not Path(out).parent.is_dir():
        raise PartitionError(f"cannot write {out}: its folder does not exist")
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
    files = list(corpus_dir.glob("fold_*/*_fold_*.jsonl"))
    if not files:
        raise PartitionError(f"no EmoBox fold files (fold_*/*_fold_*.jsonl) under {corpus_dir}")
    entries = []
    for file in sorted(files, key=lambda f: (_number(f.parent.name), f.name)):
        match = re.search(r"_(train|test)_fold_", file.name)
        if match is None:
            raise PartitionError(f"{file}: neither a _train_fold_ nor a _test_fold_ file")
        fold = file.parent.name.removeprefix("fold_")
        for line, text in enumerate(file.read_text().splitlines(), start=1):
            if not text.strip():
                continue
            try:
                entries.append((json.loads(text)["wav"], fold, match.group(1)))
            except (ValueError, KeyError, TypeError):
                raise PartitionError(
                    f"{file}:{line}: not a JSON object with a 'wav' path"
                ) from None
    return entries


def _number(folder: str) -> tuple[int, str]:
    """fold_10 after fold_2."""
    digits = folder.removeprefix("fold_")
    return (int(digits), "") if digits.isdigit() else (1 << 30, digits)


MSP_SPLITS = {"Train": "train", "Development": "validation", "Test1": "test"}


def partition_from_msp_podcast(corpus_dir: str | Path) -> list[tuple[str, str, str]]:
    """MSP-Podcast's own partition from ``Labels/labels_consensus.csv``: Train, Development
    (validation) and Test1 as one fold; other test sets (Test2, Test3) left out."""
    table = Path(corpus_dir) / "Labels" / "labels_consensus.csv"
    if not table.is_file():
        raise PartitionError(f"MSP-Podcast's labels are not at {table}")
    with table.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"FileName", "Split_Set"} - set(reader.fieldnames or ())
        if missing:
            raise PartitionError(f"{table}: missing columns {sorted(missing)}")
        return [
            (f"Audios/{row['FileName'].strip()}", "1", MSP_SPLITS[row["Split_Set"].strip()])
            for row in reader
            if row["Split_Set"].strip() in MSP_SPLITS
        ]
