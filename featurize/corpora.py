"""The public SER corpora by name: each one's file layout read, its labels mapped to shared names.

Every corpus encodes speaker and emotion in its own file names or folders; ``LAYOUTS`` reads
them from the published conventions. A file that does not fit its corpus's convention is
listed with a reason, never guessed; a file the convention says is not speech-emotion data
(RAVDESS song or video) is skipped and counted. Every corpus's own labels map to the
shared vocabulary (``anger``, ``happiness``, ...), so corpora can be compared and combined;
the mapping is printed and saved with the features.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# The shared emotion names every corpus's labels map to.
VOCABULARY = (
    "anger", "boredom", "calm", "contempt", "disgust", "excitement", "fear", "frustration",
    "happiness", "neutral", "sadness", "surprise",
)  # fmt: skip


@dataclass(frozen=True)
class Parsed:
    speaker: str
    label: str  # the corpus's own label


@dataclass(frozen=True)
class Unfit:
    reason: str  # why the file does not fit the convention (a reject)


@dataclass(frozen=True)
class Skipped:
    reason: str  # a file of the corpus that is not speech-emotion data (counted, not used)


Reading = Parsed | Unfit | Skipped


@dataclass(frozen=True)
class Layout:
    name: str
    about: str  # speakers, clips, emotions, rate, where to get it (its licence is there)
    convention: str  # the file names it reads, e.g. "03a01Fa.wav"
    labels: dict[str, str]  # own label -> shared name
    read: Callable[[PurePosixPath], Reading]  # a path relative to the corpus root
    # a corpus whose labels live in files of their own: the reader made from its root
    reader_for: Callable[[Path], Callable[[PurePosixPath], Reading]] | None = None

    def shared(self, label: str) -> str:
        return self.labels[label]

    def reader(self, root: Path) -> Callable[[PurePosixPath], Reading]:
        """How to read the files under ``root``."""
        read = self.read if self.reader_for is None else self.reader_for(root)
        return _checked(read, self.labels)


def _by_pattern(pattern: str, speaker: int, label: int, where: str = "name") -> Callable:
    """A reader matching ``pattern`` on the file's stem (or its whole relative path)."""
    regex = re.compile(pattern)

    def read(rel: PurePosixPath) -> Reading:
        text = rel.stem if where == "name" else rel.with_suffix("").as_posix()
        match = regex.fullmatch(text)
        if match is None:
            return Unfit(f"does not match {pattern!r}")
        return Parsed(match.group(speaker), match.group(label))

    return read


def _checked(read: Callable[[PurePosixPath], Reading], labels: dict[str, str]) -> Callable:
    """``read``, with a label the corpus does not have as a reject."""

    def checked(rel: PurePosixPath) -> Reading:
        got = read(rel)
        if isinstance(got, Parsed) and got.label not in labels:
            return Unfit(f"emotion {got.label!r} is not one of {sorted(labels)}")
        return got

    return checked


def _casia(rel: PurePosixPath) -> Reading:
    if len(rel.parts) != 3:
        return Unfit("not in the <speaker>/<emotion>/<file> layout")
    return Parsed(rel.parts[0], rel.parts[1])


def _ravdess(rel: PurePosixPath) -> Reading:
    fields = rel.stem.split("-")
    if len(fields) != 7 or not all(f.isdigit() and len(f) == 2 for f in fields):
        return Unfit("not MM-VV-EE-II-SS-RR-AA (seven two-digit fields)")
    modality, channel, emotion, *_, actor = fields
    if modality != "03":
        return Skipped("video (modality 01/02): only the audio-only files (03) are read")
    if channel != "01":
        return Skipped("song (vocal channel 02): only speech (01) is read")
    return Parsed(f"actor{actor}", emotion)


def _tess(rel: PurePosixPath) -> Reading:
    """The speaker from the folder (``OAF_neutral/``) where there is one: the released files
    name it too, all but one (``OAF_neutral/OA_bite_neutral.wav``)."""
    match = re.fullmatch(r"([a-zA-Z]+)_[a-zA-Z]+_([a-zA-Z_]+)", rel.stem)
    folder = re.match(r"(OAF|YAF)_", rel.parent.name, re.IGNORECASE)
    speaker = folder.group(1) if folder else match.group(1) if match else ""
    if match is None or speaker.upper() not in ("OAF", "YAF"):
        return Unfit("not <OAF|YAF>_<word>_<emotion>, nor <word>_<emotion> in an OAF_/YAF_ folder")
    return Parsed(speaker.upper(), match.group(2).lower())


def _savee(rel: PurePosixPath) -> Reading:
    if len(rel.parts) >= 2 and rel.parts[-2] in ("DC", "JE", "JK", "KL"):
        speaker, stem = rel.parts[-2], rel.stem  # DC/a01.wav
    else:
        speaker, _, stem = rel.stem.partition("_")  # DC_a01.wav
    match = re.fullmatch(r"(sa|su|a|d|f|h|n)\d{2}", stem)
    if speaker not in ("DC", "JE", "JK", "KL") or match is None:
        return Unfit("not <DC|JE|JK|KL>/<emotion><nn> or <speaker>_<emotion><nn>")
    return Parsed(speaker, match.group(1))


ESD_PARTS = ("train", "evaluation", "test")  # the official release's partition folders


def _esd(rel: PurePosixPath) -> Reading:
    """``<speaker>/<Emotion>/<speaker>_<n>.wav``, or the official release's
    ``<speaker>/<Emotion>/<train|evaluation|test>/<speaker>_<n>.wav``."""
    parts = rel.parts
    if len(parts) >= 2 and parts[-2] in ESD_PARTS:
        parts = parts[:-2] + parts[-1:]  # the partition folder is no label
    if len(parts) < 3:
        return Unfit("not <speaker>/<Emotion>/[train|evaluation|test/]<speaker>_<nnnnnn>")
    speaker, emotion = parts[-3], parts[-2]
    if not rel.stem.startswith(f"{speaker}_"):
        return Unfit(f"file name does not start with its speaker folder {speaker}_")
    return Parsed(speaker, emotion)


def _urdu(rel: PurePosixPath) -> Reading:
    if len(rel.parts) < 2 or "_" not in rel.stem:
        return Unfit("not <Emotion>/<speaker>_<...>")
    return Parsed(rel.stem.split("_")[0], rel.parts[-2])


def _labels(mapping: str) -> dict[str, str]:
    """ "a=anger d=disgust" -> {"a": "anger", "d": "disgust"}."""
    return dict(pair.split("=") for pair in mapping.split())


def _layout(
    name: str, about: str, convention: str, labels: str, read: Callable, reader_for=None
) -> Layout:
    table = _labels(labels)
    assert set(table.values()) <= set(VOCABULARY), name
    return Layout(name, about, convention, table, read, reader_for)


IEMOCAP_LINE = re.compile(r"\[[\d.]+ - [\d.]+\]\t(Ses\d{2}[FM]_\S+)\t(\w+)\t")
IEMOCAP_FOUR = {"ang": "ang", "hap": "hap", "exc": "hap", "sad": "sad", "neu": "neu"}


def _iemocap_reader(four: bool) -> Callable[[Path], Callable[[PurePosixPath], Reading]]:
    """IEMOCAP's released folders: labels from ``SessionN/dialog/EmoEvaluation/*.txt`` (the
    evaluators' majority per sentence), audio in ``SessionN/sentences/wav/<dialog>/``;
    the speaker is the session and the gender of the sentence's speaker (Ses01F). ``four``:
    the usual 4-class set, excited merged into happy, the other labels skipped."""

    def reader_for(root: Path) -> Callable[[PurePosixPath], Reading]:
        labels = {}
        for table in sorted(root.glob("Session*/dialog/EmoEvaluation/*.txt")):
            for match in IEMOCAP_LINE.finditer(table.read_text(errors="replace")):
                labels[match.group(1)] = match.group(2)

        def read(rel: PurePosixPath) -> Reading:
            if "sentences" not in rel.parts:
                return Skipped("not a sentence (IEMOCAP's whole dialogs are not read)")
            label = labels.get(rel.stem)
            if label is None:
                return Unfit("no label in SessionN/dialog/EmoEvaluation")
            if label in ("xxx", "oth"):  # a quarter of IEMOCAP: part of it, not an emotion
                return Skipped(f"evaluators gave no majority emotion ({label})")
            if four:
                if label not in IEMOCAP_FOUR:
                    return Skipped(f"{label} is not one of the 4-class set")
                label = IEMOCAP_FOUR[label]
            speaker = rel.stem[: len("Ses01")] + rel.stem.rsplit("_", 1)[1][0]  # Ses01 + F|M
            return Parsed(speaker, label)

        return read

    return reader_for


MSP_LABELS = "Labels/labels_consensus.csv"
MSP_SKIPPED = {"O": "other", "X": "no agreement"}  # consensus labels that are no emotion


def _msp_podcast_reader(root: Path) -> Callable[[PurePosixPath], Reading]:
    """MSP-Podcast: ``Audios/<FileName>`` labelled by ``Labels/labels_consensus.csv``
    (FileName, EmoClass, SpkrID, Gender, Split_Set). A segment of an unknown speaker
    (SpkrID "Unknown") is a speaker of its own: unknown voices are never merged into one."""
    table = root / MSP_LABELS
    if not table.is_file():
        raise FileNotFoundError(f"MSP-Podcast's labels are not at {table}")
    with table.open(newline="") as f:
        rows = {row["FileName"].strip(): row for row in csv.DictReader(f)}

    def read(rel: PurePosixPath) -> Reading:
        row = rows.get(rel.name)
        if row is None:
            return Unfit(f"not listed in {MSP_LABELS}")
        label = row["EmoClass"].strip()
        if label in MSP_SKIPPED:
            return Skipped(f"consensus label {label} ({MSP_SKIPPED[label]}) is no emotion")
        speaker = row["SpkrID"].strip()
        if not speaker or speaker.lower() == "unknown":
            speaker = f"unknown-{rel.stem}"
        return Parsed(speaker, label)

    return read


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        _layout(
            "casia",
            "CASIA Chinese emotional speech (the paper's corpus); 4 speakers, 1,200 clips in "
            "the public subset, 6 emotions, 16 kHz; from the Institute of Automation, CAS",
            "<speaker>/<emotion>/<id>.wav",
            "angry=anger fear=fear happy=happiness neutral=neutral sad=sadness surprise=surprise",
            _casia,
        ),
        _layout(
            "emodb",
            "Berlin Database of Emotional Speech; 10 speakers, 535 clips, 7 emotions, 16 kHz; "
            "emodb.bilderbar.info",
            "03a01Fa.wav (speaker 2 digits, text 3, emotion letter, version)",
            "W=anger L=boredom E=disgust A=fear F=happiness T=sadness N=neutral",
            _by_pattern(r"(\d{2})([a-z]\d{2})([WLEAFTN])([a-z])", 1, 3),
        ),
        _layout(
            "ravdess",
            "RAVDESS speech; 24 actors, 1,440 speech clips, 8 emotions, 48 kHz; CC BY-NC-SA "
            "4.0, zenodo.org/record/1188976 (song and video files are skipped)",
            "03-01-06-01-02-01-12.wav (modality, channel, emotion, intensity, statement, "
            "repetition, actor)",
            "01=neutral 02=calm 03=happiness 04=sadness 05=anger 06=fear 07=disgust 08=surprise",
            _ravdess,
        ),
        _layout(
            "crema-d",
            "CREMA-D; 91 actors, 7,442 clips, 6 emotions, 16 kHz; ODbL, "
            "github.com/CheyneyComputerScience/CREMA-D",
            "1001_DFA_ANG_XX.wav (actor, sentence, emotion, level LO MD HI XX, or X as "
            "named before late 2022)",
            "ANG=anger DIS=disgust FEA=fear HAP=happiness NEU=neutral SAD=sadness",
            _by_pattern(r"(\d{4})_([A-Z]{3})_([A-Z]{3})_(LO|MD|HI|XX|X)", 1, 3),
        ),
        _layout(
            "tess",
            "Toronto emotional speech set; 2 speakers, 2,800 clips, 7 emotions, 24.4 kHz; "
            "CC BY-NC-ND 4.0, University of Toronto (tspace.library.utoronto.ca)",
            "OAF_angry/OAF_back_angry.wav (speaker, word, emotion; the speaker from the "
            "folder where there is one)",
            "angry=anger disgust=disgust fear=fear happy=happiness neutral=neutral "
            "ps=surprise pleasant_surprise=surprise sad=sadness",
            _tess,
        ),
        _layout(
            "savee",
            "SAVEE; 4 male speakers, 480 clips, 7 emotions, 44.1 kHz; University of Surrey",
            "DC/a01.wav or DC_a01.wav (speaker DC JE JK KL, emotion a d f h n sa su)",
            "a=anger d=disgust f=fear h=happiness n=neutral sa=sadness su=surprise",
            _savee,
        ),
        _layout(
            "emovo",
            "EMOVO Italian; 6 speakers, 588 clips, 7 emotions, 48 kHz; Fondazione Ugo Bordoni",
            "f1/dis-f1-b1.wav (emotion, speaker, sentence)",
            "dis=disgust gio=happiness neu=neutral pau=fear rab=anger sor=surprise tri=sadness",
            _by_pattern(r"([a-z]{3})-([fm]\d)-([a-z]\d+)", 2, 1),
        ),
        _layout(
            "esd",
            "Emotional Speech Dataset (ESD); 20 speakers (10 Mandarin, 10 English), 35,000 "
            "clips, 5 emotions, 16 kHz; github.com/HLTSingapore/Emotional-Speech-Data",
            "0011/Angry/0011_000351.wav or the release's 0011/Angry/train/0011_000351.wav "
            "(speaker, emotion folder, partition folder)",
            "Angry=anger Happy=happiness Neutral=neutral Sad=sadness Surprise=surprise",
            _esd,
        ),
        _layout(
            "urdu",
            "URDU; 38 speakers, 400 clips, 4 emotions; github.com/siddiquelatif/URDU-Dataset",
            "Angry/SM1_F1_A01.wav (emotion folder, speaker the first token)",
            "Angry=anger Happy=happiness Neutral=neutral Sad=sadness",
            _urdu,
        ),
        _layout(
            "iemocap",
            "IEMOCAP (licensed); 10 speakers in 5 sessions, 10,039 sentences, 16 kHz; "
            "sail.usc.edu/iemocap (the full label set; no-majority sentences rejected)",
            "SessionN/sentences/wav/<dialog>/<sentence>.wav, labels in "
            "SessionN/dialog/EmoEvaluation/<dialog>.txt",
            "ang=anger hap=happiness exc=excitement sad=sadness neu=neutral fru=frustration "
            "sur=surprise fea=fear dis=disgust",
            lambda rel: Unfit("IEMOCAP is read with its label files"),
            _iemocap_reader(four=False),
        ),
        _layout(
            "msp-podcast",
            "MSP-Podcast (licensed); podcast segments, over 2,000 speakers, 8 emotions by "
            "consensus, 16 kHz; ecs.utdallas.edu/research/researchgroups/msp-lab (other and "
            "no-agreement segments skipped and counted; unknown speakers kept apart)",
            "Audios/<FileName>.wav, labels in Labels/labels_consensus.csv (FileName, EmoClass "
            "A S H U F D C N O X, SpkrID, Gender, Split_Set)",
            "A=anger S=sadness H=happiness U=surprise F=fear D=disgust C=contempt N=neutral",
            lambda rel: Unfit("MSP-Podcast is read with its label file"),
            _msp_podcast_reader,
        ),
        _layout(
            "iemocap4",
            "IEMOCAP, the usual 4 classes: anger, happiness (excited merged in), sadness, "
            "neutral; the other labels skipped and counted",
            "as iemocap",
            "ang=anger hap=happiness sad=sadness neu=neutral",
            lambda rel: Unfit("IEMOCAP is read with its label files"),
            _iemocap_reader(four=True),
        ),
    )
}


def layout(name: str) -> Layout:
    """The layout of a corpus by name (any case); ValueError listing the known ones."""
    key = name.strip().lower()
    if key not in LAYOUTS:
        raise ValueError(f"unknown corpus {name!r}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[key]


def describe() -> str:
    """Every known corpus, its convention and its labels, as text for a terminal."""
    blocks = []
    for item in LAYOUTS.values():
        mapping = ", ".join(f"{own} -> {shared}" for own, shared in item.labels.items())
        blocks.append(f"{item.name}: {item.about}\n  files: {item.convention}\n  labels: {mapping}")
    return "\n".join(blocks)
