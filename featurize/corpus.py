"""Finding the utterances of a corpus: a named corpus's own layout (``featurize.corpora``),
the CASIA folder layout, or a manifest CSV for any other."""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from featurize.audio import AUDIO_EXTENSIONS
from featurize.corpora import Layout, Parsed, Unfit
from featurize.raysession import SharedPathError

SHOWN = 5  # duplicates named in an error message; the rest are counted
# A named corpus with more than this share of files outside its convention is refused (a
# mix of corpora, or the wrong --corpus); below it the strays are rejected and listed.
MIXED_SHARE = 0.1


class CorpusError(ValueError):
    """The corpus as a whole cannot be used (missing, empty, malformed manifest)."""


class MissingCorpusFileError(SharedPathError):
    """A corpus file the driver listed is missing on the node featurizing it."""


@dataclass(frozen=True)
class Utterance:
    path: str  # absolute path the workers read
    source: str  # path relative to the corpus root (posix), the utterance's stable name
    speaker: str
    emotion: str
    utt_id: str

    @property
    def utterance_id(self) -> str:
        """Stable id: the relative path without its extension, e.g. ``spk01/angry/s0201``."""
        return self.source.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Corpus:
    root: Path
    utterances: tuple[Utterance, ...]
    rejects: tuple[tuple[str, str], ...]  # (relative path, reason) found while listing
    skipped: tuple[tuple[str, str], ...] = ()  # (relative path, why): not emotional speech
    label_map: dict[str, str] = field(default_factory=dict)  # a named corpus's own -> shared
    # (relative path, why): the same audio as another file, left out (``keep_one_copy``)
    copies: tuple[tuple[str, str], ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        """Sorted emotion names; a row's label is its index in here."""
        return tuple(sorted({u.emotion for u in self.utterances}))


def discover(corpus: Path, manifest: Path | None = None, layout: Layout | None = None) -> Corpus:
    """The corpus's utterances, from ``manifest`` if given, else from a named corpus's
    ``layout``, else from the CASIA folder layout."""
    if manifest is not None:
        return _from_manifest(manifest)
    corpus = Path(corpus).resolve()
    if not corpus.exists():
        raise CorpusError(f"corpus path does not exist: {corpus}")
    if not corpus.is_dir():
        raise CorpusError(f"corpus path is not a folder: {corpus} (use --manifest for a CSV)")
    if layout is not None:
        return _from_layout(corpus, layout)
    utterances, rejects = [], []
    for path in sorted(p for p in corpus.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS):
        rel = path.relative_to(corpus)
        if len(rel.parts) != 3:
            rejects.append((rel.as_posix(), "not in the <speaker>/<emotion>/<file> layout"))
            continue
        speaker, emotion, name = rel.parts
        utterances.append(Utterance(str(path), rel.as_posix(), speaker, emotion, Path(name).stem))
    if not utterances:
        raise CorpusError(
            f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in the <speaker>/<emotion>/<file> "
            f"layout under {corpus}; for another layout pass --manifest CSV"
        )
    _refuse_duplicates(utterances, corpus)
    kept, copies = keep_one_copy(utterances)
    return Corpus(corpus, tuple(kept), tuple(rejects), copies=tuple(copies))


def _from_layout(corpus: Path, layout: Layout) -> Corpus:
    """Every audio file under ``corpus`` read by ``layout``: its speaker, and its label in the
    shared vocabulary; a few files that do not fit are rejected with the reason (more than
    ``MIXED_SHARE`` of them: refused), files the corpus says are not emotional speech are
    skipped."""
    utterances, rejects, skipped, used = [], [], [], set()
    try:
        reader = layout.reader(corpus)
    except FileNotFoundError as err:  # a corpus whose labels live in a file of its own
        raise CorpusError(f"{err} (--corpus {layout.name} reads it there)") from None
    for path in sorted(p for p in corpus.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS):
        rel = path.relative_to(corpus)
        read = reader(PurePosixPath(rel.as_posix()))
        if isinstance(read, Unfit):
            rejects.append((rel.as_posix(), f"not the {layout.name} convention: {read.reason}"))
        elif isinstance(read, Parsed):
            used.add(read.label)
            emotion = layout.shared(read.label)
            source = rel.as_posix()
            utterances.append(Utterance(str(path), source, read.speaker, emotion, path.stem))
        else:
            skipped.append((rel.as_posix(), read.reason))
    if not utterances:
        raise CorpusError(
            f"no audio file under {corpus} follows the {layout.name} convention "
            f"({layout.convention}); {len(rejects)} did not fit"
            + (f", e.g. {rejects[0][0]}: {rejects[0][1]}" if rejects else "")
            + f"; {len(skipped)} skipped as not emotional speech"
            + (f", e.g. {skipped[0][0]}: {skipped[0][1]}" if skipped else "")
        )
    if len(rejects) > MIXED_SHARE * (len(rejects) + len(utterances)):
        examples = "; ".join(f"{path}: {reason}" for path, reason in rejects[:SHOWN])
        raise CorpusError(
            f"{corpus}: {len(rejects)} of {len(rejects) + len(utterances)} audio files do not "
            f"follow the {layout.name} convention ({layout.convention}): a mix of corpora, or "
            f"another --corpus; refused rather than half-read ({examples})"
        )
    _refuse_duplicates(utterances, corpus)
    kept, copies = keep_one_copy(utterances)
    label_map = {own: layout.shared(own) for own in sorted(used)}
    return Corpus(corpus, tuple(kept), tuple(rejects), tuple(skipped), label_map, tuple(copies))


def _refuse_duplicates(
    utterances: list[Utterance],
    where: Path,
    key: str = "utterance_id",
    what: str = "utterance id(s) shared by several files",
) -> None:
    """Refuse utterances sharing a ``key``: a split could put one clip in both train and test."""
    files: dict[str, list[str]] = {}
    for u in utterances:
        files.setdefault(getattr(u, key), []).append(u.source)
    shared = sorted((k, v) for k, v in files.items() if len(v) > 1)
    if shared:
        shown = "; ".join(f"{k} ({', '.join(v)})" for k, v in shared[:SHOWN])
        more = f"; and {len(shared) - SHOWN} more" if len(shared) > SHOWN else ""
        raise CorpusError(
            f"{where}: {len(shared)} {what}, so one clip could land in both train and test: "
            f"{shown}{more}; keep one file each"
        )


def keep_one_copy(
    utterances: list[Utterance],
) -> tuple[list[Utterance], list[tuple[str, str]]]:
    """The utterances with each audio content once, and (path, why) of those left out.

    The same bytes under two paths (a corpus copied into a folder of itself, a file saved
    twice) would let one copy train and the other test. Of copies with the same speaker
    and emotion the first path is kept; copies labelled differently are all left out, as
    which label is right cannot be told. Only files whose size another file shares are read.
    """
    by_size: dict[int, list[Utterance]] = {}
    for u in utterances:
        try:
            by_size.setdefault(os.path.getsize(u.path), []).append(u)
        except OSError:  # unreadable here: the worker rejects it with its reason
            continue
    by_content: dict[str, list[Utterance]] = {}
    for same_size in by_size.values():
        if len(same_size) > 1:
            for u in same_size:
                try:
                    digest = hashlib.sha1(Path(u.path).read_bytes()).hexdigest()
                except OSError:
                    continue
                by_content.setdefault(digest, []).append(u)
    left_out: dict[str, str] = {}
    for group in by_content.values():
        if len(group) < 2:
            continue
        first, *others = sorted(group, key=lambda u: u.source)
        if len({(u.speaker, u.emotion) for u in group}) == 1:
            for u in others:
                left_out[u.source] = f"the same audio as {first.source}, kept once"
        else:
            labels = ", ".join(f"{u.source} ({u.speaker}, {u.emotion})" for u in group)
            for u in group:
                left_out[u.source] = f"the same audio under other labels: {labels}"
    kept = [u for u in utterances if u.source not in left_out]
    return kept, sorted(left_out.items())


def _from_manifest(manifest: Path) -> Corpus:
    manifest = Path(manifest).resolve()
    if not manifest.is_file():
        raise CorpusError(f"manifest does not exist: {manifest}")
    root = manifest.parent
    with manifest.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"path", "speaker", "emotion"} - set(reader.fieldnames or ())
        if missing:
            raise CorpusError(f"{manifest}: missing columns {sorted(missing)}")
        rows = list(reader)
    utterances, rejects = [], []
    for line, row in enumerate(rows, start=2):
        rel = row["path"].strip()
        if not rel or not row["speaker"].strip() or not row["emotion"].strip():
            rejects.append((f"{manifest.name}:{line}", "empty path, speaker or emotion"))
            continue
        path = (root / rel).resolve()
        if not path.is_file():
            rejects.append((rel, "listed in the manifest but not found"))
            continue
        source = Path(rel).as_posix()
        utt_id = (row.get("utt_id") or "").strip() or Path(rel).stem
        utterances.append(
            Utterance(str(path), source, row["speaker"].strip(), row["emotion"].strip(), utt_id)
        )
    if not utterances:
        raise CorpusError(f"{manifest}: no usable audio files listed")
    _refuse_duplicates(utterances, manifest)
    _refuse_duplicates(utterances, manifest, "path", "file(s) listed more than once")
    kept, copies = keep_one_copy(utterances)
    return Corpus(root, tuple(kept), tuple(rejects), copies=tuple(copies))
