"""Evaluation protocols as index splits: the paper's random 80/20, leave-one-speaker-out, k-fold.

Every split is a pure function of (labels, speakers, seed), so anyone can regenerate it; the
workflow also saves each split's utterance ids next to the results for auditing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class Protocol(str, Enum):
    paper = "paper"  # stratified random 80/20 by seed (speaker- and sentence-dependent)
    loso = "loso"  # leave one speaker out: one fold per speaker (speaker-independent)
    kfold = "kfold"  # stratified k folds by seed
    # k folds of whole speakers, stratified by emotion, the same for every seed (as loso's
    # folds are): for corpora with many speakers, where loso would make too many folds
    speaker_kfold = "speaker-kfold"
    # train on one corpus, test on another, on the labels they share (workflows.grid.plan)
    cross_corpus = "cross-corpus"
    # a corpus's own partition, read from a file (workflows.grid.partition)
    predefined = "predefined"


@dataclass(frozen=True)
class Split:
    fold: int
    name: str  # e.g. "paper-s0-f0", "loso-s0-f2(spk03)"
    train: np.ndarray  # row indices
    test: np.ndarray


def protocol_folds(protocol: Protocol, speakers: np.ndarray, k: int = 5) -> int:
    """Number of folds a protocol has on this data."""
    if protocol in (Protocol.paper, Protocol.cross_corpus):
        return 1
    if protocol is Protocol.loso:
        return len(np.unique(speakers))
    return k


def make_split(
    protocol: Protocol,
    labels: np.ndarray,
    speakers: np.ndarray,
    seed: int,
    fold: int,
    k: int = 5,
    test_fraction: float = 0.2,
) -> Split:
    """The ``fold``-th train/test split of ``protocol`` for ``seed`` (cross-corpus splits
    are two corpora's, planned by ``workflows.grid.plan``)."""
    from sklearn.model_selection import StratifiedKFold, train_test_split  # (slow to import)

    index = np.arange(len(labels))
    if protocol is Protocol.paper:
        if fold != 0:
            raise ValueError("the paper protocol has a single fold (0)")
        train, test = train_test_split(
            index, test_size=test_fraction, random_state=seed, stratify=labels
        )
        return Split(0, f"paper-s{seed}-f0", np.sort(train), np.sort(test))
    if protocol is Protocol.loso:
        names = np.unique(speakers)
        if len(names) < 2:
            raise ValueError(
                f"leave-one-speaker-out needs at least 2 speakers, the data has {len(names)}"
            )
        held_out = names[fold]
        test = index[speakers == held_out]
        return Split(fold, f"loso-s{seed}-f{fold}", index[speakers != held_out], test)
    if protocol is Protocol.cross_corpus:
        raise ValueError("a cross-corpus split is of two corpora: see workflows.grid.plan")
    if protocol is Protocol.predefined:
        raise ValueError("a predefined split is read from its file: see workflows.grid.partition")
    if protocol is Protocol.speaker_kfold:
        from sklearn.model_selection import StratifiedGroupKFold

        n_speakers = len(np.unique(speakers))
        if n_speakers < k:
            raise ValueError(
                f"speaker-kfold with k={k} needs {k} speakers, the data has {n_speakers}"
            )
        groups = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=0)
        train, test = list(groups.split(index, labels, groups=speakers))[fold]
        return Split(fold, f"spk{k}fold-s{seed}-f{fold}", train, test)
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    train, test = list(folds.split(index, labels))[fold]
    return Split(fold, f"kfold{k}-s{seed}-f{fold}", train, test)


def validation_speaker_split(split: Split, speakers: np.ndarray) -> Split:
    """Nested leave-one-speaker-out: a loso split's training speakers with the one after its
    test speaker (in sorted order, wrapping) held out as the evaluation part; the test
    speaker's rows appear in neither part."""
    names = np.unique(speakers[split.train])
    if len(names) < 2:
        raise ValueError(
            f"a validation speaker needs 2 training speakers, {split.name} has {len(names)}"
        )
    test_speaker = speakers[split.test][0]
    later = [name for name in names if name > test_speaker]
    held_out = later[0] if later else names[0]
    val = split.train[speakers[split.train] == held_out]
    fit = split.train[speakers[split.train] != held_out]
    return Split(split.fold, f"{split.name}-valspk", fit, val)


def validation_fold_split(split: Split, next_test: np.ndarray) -> Split:
    """Nested speaker-kfold: a fold's training side with the next fold's test speakers
    (``next_test``: that fold's test rows, all on this fold's training side) held out as
    the evaluation part; this fold's test rows appear in neither part."""
    val = np.intersect1d(split.train, next_test)
    if len(val) != len(next_test) or len(val) == len(split.train):
        raise ValueError(
            f"{split.name}: the next fold's speakers are not a part of its training side"
        )
    return Split(split.fold, f"{split.name}-valfold", np.setdiff1d(split.train, val), val)


def validation_split(
    labels: np.ndarray, seed: int, fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Carve a stratified validation part out of training indices' labels (positions into them)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    fit, val = train_test_split(index, test_size=fraction, random_state=seed, stratify=labels)
    return np.sort(fit), np.sort(val)
