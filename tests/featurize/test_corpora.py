"""Named corpora: each convention read from fake corpora with the real names, and refusals."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from attres.splits import Protocol, make_split, protocol_folds
from featurize.corpora import LAYOUTS, VOCABULARY, Parsed, Unfit, layout
from featurize.corpus import CorpusError, discover
from workflows.cli import app
from workflows.results.compare import pair_unit


def corpus(root: Path, files: list[str]) -> Path:
    """Half a second of a tone at 16 kHz under each relative path, each file its own pitch
    (the same audio twice is one recording: ``keep_one_copy``)."""
    for i, rel in enumerate(files):
        tone = 0.1 * np.sin(2 * np.pi * (220 + i) * np.arange(8000) / 16000)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, tone.astype(np.float32), 16000)
    return root


CASES = {  # corpus: (files, {source: (speaker, shared label)} of the ones that fit, unfit)
    "emodb": (["03a01Fa.wav", "16b10Wb.wav", "03a01Xa.wav", "notes.wav"],
              {"03a01Fa.wav": ("03", "happiness"), "16b10Wb.wav": ("16", "anger")}, 2),
    "ravdess": (["Actor_12/03-01-06-01-02-01-12.wav", "Actor_01/03-01-02-02-01-02-01.wav",
                 "Actor_01/03-02-03-01-01-01-01.wav", "Actor_01/01-01-03-01-01-01-01.wav",
                 "Actor_01/03-01-03-01.wav"],
                {"Actor_12/03-01-06-01-02-01-12.wav": ("actor12", "fear"),
                 "Actor_01/03-01-02-02-01-02-01.wav": ("actor01", "calm")}, 1),
    "crema-d": (["1001_DFA_ANG_XX.wav", "1091_TIE_NEU_LO.wav", "CremaTest/1040_ITH_SAD_X.wav",
                 "1001_DFA_XYZ_XX.wav", "1001_DFA_ANG_QQ.wav"],
                {"1001_DFA_ANG_XX.wav": ("1001", "anger"),
                 "1091_TIE_NEU_LO.wav": ("1091", "neutral"),
                 "CremaTest/1040_ITH_SAD_X.wav": ("1040", "sadness")}, 2),
    "tess": (["OAF_angry/OAF_back_angry.wav", "YAF_pleasant_surprised/YAF_bar_ps.wav",
              "OAF_neutral/OA_bite_neutral.wav", "OAF_angry/readme.wav", "XX_bite_neutral.wav"],
             {"OAF_angry/OAF_back_angry.wav": ("OAF", "anger"),
              "YAF_pleasant_surprised/YAF_bar_ps.wav": ("YAF", "surprise"),
              "OAF_neutral/OA_bite_neutral.wav": ("OAF", "neutral")}, 2),
    "savee": (["DC/a01.wav", "JK_su15.wav", "XX/a01.wav"],
              {"DC/a01.wav": ("DC", "anger"), "JK_su15.wav": ("JK", "surprise")}, 1),
    "emovo": (["f1/dis-f1-b1.wav", "m3/gio-m3-l4.wav", "f1/bad-name.wav"],
              {"f1/dis-f1-b1.wav": ("f1", "disgust"), "m3/gio-m3-l4.wav": ("m3", "happiness")}, 1),
    "esd": (["0011/Angry/0011_000351.wav", "0020/Surprise/0020_001500.wav",
             "0013/Sad/evaluation/0013_001091.wav", "0011/Angry/0012_000001.wav"],
            {"0011/Angry/0011_000351.wav": ("0011", "anger"),
             "0020/Surprise/0020_001500.wav": ("0020", "surprise"),
             "0013/Sad/evaluation/0013_001091.wav": ("0013", "sadness")}, 1),
    "urdu": (["Angry/SM1_F1_A01.wav", "Sad/SF2_F3_S09.wav", "Bored/SM1_F1_B01.wav"],
             {"Angry/SM1_F1_A01.wav": ("SM1", "anger"), "Sad/SF2_F3_S09.wav": ("SF2", "sadness")},
             1),
    "casia": (["liuchanhg/angry/201.wav", "wangzhe/surprise/250.wav", "stray.wav"],
              {"liuchanhg/angry/201.wav": ("liuchanhg", "anger"),
               "wangzhe/surprise/250.wav": ("wangzhe", "surprise")}, 1),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_each_convention_reads_speakers_and_labels_and_names_what_does_not_fit(name, tmp_path):
    files, fits, unfit = CASES[name]
    read = layout(name).reader(corpus(tmp_path / "all", files))
    got = {f: read(PurePosixPath(f)) for f in files}
    parsed = {f: (r.speaker, layout(name).shared(r.label)) for f, r in got.items()
              if isinstance(r, Parsed)}  # fmt: skip
    assert parsed == fits
    unfits = [r.reason for r in got.values() if isinstance(r, Unfit)]
    assert len(unfits) == unfit and set(layout(name).labels.values()) <= set(VOCABULARY)
    # as a corpus folder: what fits is read, its labels mapped
    found = discover(corpus(tmp_path / "fit", list(fits)), layout=layout(name))
    assert {u.source: (u.speaker, u.emotion) for u in found.utterances} == fits
    assert set(found.label_map.values()) == {e for _, e in fits.values()}


def test_ravdess_counts_song_and_video_apart_from_what_does_not_fit(tmp_path):
    files, fits, _ = CASES["ravdess"]
    speech = [f for f in files if f in fits]
    found = discover(corpus(tmp_path, speech + files[2:4]), layout=layout("ravdess"))
    assert sorted(reason.split(" ")[0] for _, reason in found.skipped) == ["song", "video"]
    assert len(found.utterances) == 2 and found.rejects == ()


def test_a_mix_of_conventions_is_refused_not_half_read(tmp_path):
    emodb = [f"03a0{i}Wa.wav" for i in range(9)] + ["03a01Qa.wav"]  # one stray in ten: read
    found = discover(corpus(tmp_path / "one", emodb), layout=layout("emodb"))
    assert len(found.utterances) == 9 and [p for p, _ in found.rejects] == ["03a01Qa.wav"]
    assert "the emodb convention" in found.rejects[0][1]
    mixed = emodb[:9] + [f"10{i:02d}_DFA_ANG_XX.wav" for i in range(3)]  # EmoDB and CREMA-D
    with pytest.raises(CorpusError, match=r"3 of 12 audio files do not follow the emodb"):
        discover(corpus(tmp_path / "mixed", mixed), layout=layout("emodb"))


def test_a_folder_of_another_corpus_is_refused_saying_what_was_expected(tmp_path):
    corpus(tmp_path, ["03a01Fa.wav"])  # EmoDB, read as CREMA-D
    with pytest.raises(CorpusError, match=r"crema-d convention \(1001_DFA_ANG_XX"):
        discover(tmp_path, layout=layout("crema-d"))
    with pytest.raises(ValueError, match="unknown corpus 'mead'; known: casia, emodb"):
        layout("mead")


def test_every_layout_maps_into_the_shared_vocabulary():
    for item in LAYOUTS.values():
        assert set(item.labels.values()) <= set(VOCABULARY), item.name


def test_speaker_kfold_holds_out_whole_speakers_the_same_for_every_seed():
    speakers = np.repeat([f"s{i}" for i in range(10)], 12)
    labels = np.tile(np.arange(6), 20)
    k = protocol_folds(Protocol.speaker_kfold, speakers, 4)
    splits = [make_split(Protocol.speaker_kfold, labels, speakers, 0, f, 4) for f in range(k)]
    tested = np.concatenate([s.test for s in splits])
    assert sorted(tested) == list(range(len(labels)))  # every row tested exactly once
    for split in splits:
        assert not set(speakers[split.test]) & set(speakers[split.train])
        assert set(labels[split.test]) == set(range(6))  # stratified by emotion
    again = make_split(Protocol.speaker_kfold, labels, speakers, 7, 2, 4)
    assert np.array_equal(again.test, splits[2].test)  # a fold is the same speakers
    assert pair_unit("speaker-kfold") == "fold"
    with pytest.raises(ValueError, match="needs 4 speakers, the data has 2"):
        make_split(Protocol.speaker_kfold, labels, np.repeat(["a", "b"], 60), 0, 0, 4)


def test_featurize_a_named_corpus_prints_and_keeps_its_label_mapping(ray_local, tmp_path):
    names = [f"{spk}a0{i}{emo}a.wav" for spk in ("03", "08") for i in range(3) for emo in "WFN"]
    root = corpus(tmp_path / "emodb", names + ["03a01Qa.wav"])
    out = tmp_path / "features"
    listing = CliRunner().invoke(app, ["corpora"])
    assert listing.exit_code == 0 and "emodb: Berlin" in listing.stdout
    args = ["featurize", str(root), "--out", str(out), "--corpus", "emodb", "--image-size", "16"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "emodb labels: F -> happiness, N -> neutral, W -> anger" in result.stdout
    assert "rejected 03a01Qa.wav: not the emodb convention" in result.stdout
    summary = json.loads((out / "_summary.json").read_text())
    assert summary["label_map"] == {"F": "happiness", "N": "neutral", "W": "anger"}
    labels = json.loads((out / "_features.json").read_text())["labels"]
    assert labels == ["anger", "happiness", "neutral"]
    refused = CliRunner().invoke(app, [*args, "--manifest", str(tmp_path / "m.csv")])
    assert refused.exit_code == 2 and "not both" in refused.output


def iemocap(root: Path) -> Path:
    """Two sentences of each kind in IEMOCAP's released layout, a whole dialog beside them."""
    sentences = {"F000": "neu", "M001": "exc", "F002": "fru", "M003": "xxx"}
    sentences |= {f"M{i:03d}": "sad" for i in range(10, 18)}  # enough that one stray is one
    wav = "Session1/sentences/wav/Ses01F_impro01"
    whole = "Session1/dialog/wav/Ses01F_impro01.wav"
    unlabelled = f"{wav}/Ses01F_impro01_F099.wav"
    corpus(root, [f"{wav}/Ses01F_impro01_{k}.wav" for k in sentences] + [unlabelled, whole])
    table = root / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    table.parent.mkdir(parents=True)
    table.write_text(
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        + "".join(
            f"[{i}.0 - {i}.5]\tSes01F_impro01_{k}\t{label}\t[2.5, 2.5, 2.5]\nC-E1:\tNeutral;\n"
            for i, (k, label) in enumerate(sentences.items())
        )
    )
    return root


def test_iemocap_reads_its_label_files_and_the_four_class_set_merges_excited(tmp_path):
    root = iemocap(tmp_path)
    full = discover(root, layout=layout("iemocap"))
    read = {u.utt_id: (u.speaker, u.emotion) for u in full.utterances}
    assert read["Ses01F_impro01_F000"] == ("Ses01F", "neutral")
    assert read["Ses01F_impro01_M001"] == ("Ses01M", "excitement")
    assert read["Ses01F_impro01_F002"] == ("Ses01F", "frustration")
    assert len(read) == 3 + 8  # and the eight sad ones
    wav = "Session1/sentences/wav/Ses01F_impro01"
    assert [(p, "no label" in r) for p, r in full.rejects] == [
        (f"{wav}/Ses01F_impro01_F099.wav", True)
    ]
    skipped = dict(full.skipped)
    assert "no majority emotion (xxx)" in skipped[f"{wav}/Ses01F_impro01_M003.wav"]
    assert "Session1/dialog/wav/Ses01F_impro01.wav" in skipped
    four = discover(root, layout=layout("iemocap4"))
    emotions = {u.utt_id: u.emotion for u in four.utterances}
    assert emotions["Ses01F_impro01_M001"] == "happiness"  # excited, merged
    assert "Ses01F_impro01_F002" not in emotions  # frustration: not of the four
    assert len(four.skipped) == 3  # the whole dialog, no majority, frustration


def test_the_same_audio_under_two_paths_is_kept_once_and_named(tmp_path):
    """TESS's public copy holds its folders twice, once nested in itself: one utterance each."""
    files = ["OAF_angry/OAF_back_angry.wav", "OAF_sad/OAF_back_sad.wav"]
    root = corpus(tmp_path / "tess", files)
    nested = root / "TESS copy"
    for rel in files:
        (nested / rel).parent.mkdir(parents=True, exist_ok=True)
        (nested / rel).write_bytes((root / rel).read_bytes())
    found = discover(root, layout=layout("tess"))
    assert sorted(u.source for u in found.utterances) == files
    assert [path for path, _ in found.copies] == [f"TESS copy/{rel}" for rel in files]
    assert "the same audio as OAF_angry/OAF_back_angry.wav" in found.copies[0][1]


def test_the_same_audio_under_two_labels_is_left_out_whole(tmp_path):
    """CREMA-D's public copy has a clip filed as neutral and as happy: neither label is kept."""
    root = corpus(tmp_path / "crema", ["1006_TIE_NEU_XX.wav", "1001_DFA_ANG_XX.wav"])
    (root / "1006_TIE_HAP_XX.wav").write_bytes((root / "1006_TIE_NEU_XX.wav").read_bytes())
    found = discover(root, layout=layout("crema-d"))
    assert [u.source for u in found.utterances] == ["1001_DFA_ANG_XX.wav"]
    assert [path for path, _ in found.copies] == ["1006_TIE_HAP_XX.wav", "1006_TIE_NEU_XX.wav"]
    assert all("under other labels" in why for _, why in found.copies)


def test_the_official_esd_layout_is_read_whole(tmp_path):
    """ESD as released: <spk>/<Emotion>/{train,evaluation,test}/<spk>_<n>.wav, nothing else."""
    files = [f"0001/{emotion}/{part}/0001_{i:06d}.wav"
             for i, (emotion, part) in enumerate(
                 [("Angry", "train"), ("Happy", "evaluation"), ("Neutral", "test"),
                  ("Sad", "train"), ("Surprise", "test")], start=1)]  # fmt: skip
    found = discover(corpus(tmp_path, files), layout=layout("esd"))
    assert found.rejects == () and len(found.utterances) == 5
    assert {u.speaker for u in found.utterances} == {"0001"}


def test_a_folder_of_ravdess_songs_only_says_what_was_skipped(tmp_path):
    root = corpus(
        tmp_path, ["Actor_01/03-02-03-01-01-01-01.wav", "Actor_01/03-02-04-01-01-01-01.wav"]
    )
    with pytest.raises(CorpusError, match="0 did not fit; 2 skipped as not emotional speech, e.g."):
        discover(root, layout=layout("ravdess"))


def test_aiff_audio_under_a_wav_name_is_read_as_the_aiff_it_is(tmp_path):
    """Two of TESS's files are AIFF named .wav: the header, not the name, says what to read."""
    from featurize.audio import decode_audio

    tone = (0.1 * np.sin(np.arange(4000) / 10)).astype(np.float32)
    path = tmp_path / "YAF_neat_fear.wav"
    sf.write(path, tone, 24414, format="AIFF")
    samples, rate = decode_audio(path.read_bytes())
    assert rate == 24414 and np.allclose(samples[:, 0], tone, atol=1e-4)


def msp_podcast(root: Path) -> Path:
    """MSP-Podcast's layout with its label file's real columns: two known speakers, two
    segments of unknown speakers, one 'other' and one 'no agreement'."""
    rows = [("MSP-PODCAST_0001_0008.wav", "A", "127", "Train"),
            ("MSP-PODCAST_0001_0010.wav", "N", "127", "Development"),
            ("MSP-PODCAST_0002_0001.wav", "C", "45", "Test1"),
            ("MSP-PODCAST_0003_0001.wav", "H", "Unknown", "Train"),
            ("MSP-PODCAST_0003_0002.wav", "S", "Unknown", "Train"),
            ("MSP-PODCAST_0004_0001.wav", "O", "45", "Train"),
            ("MSP-PODCAST_0004_0002.wav", "X", "45", "Test1")]  # fmt: skip
    corpus(root, [f"Audios/{name}" for name, *_ in rows])
    (root / "Labels").mkdir()
    (root / "Labels/labels_consensus.csv").write_text(
        "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set\n"
        + "".join(f"{n},{e},3.0,4.0,3.5,{s},Female,{p}\n" for n, e, s, p in rows)
    )
    return root


def test_msp_podcast_reads_its_consensus_labels_and_keeps_unknown_speakers_apart(tmp_path):
    found = discover(msp_podcast(tmp_path), layout=layout("msp-podcast"))
    read = {u.utt_id: (u.speaker, u.emotion) for u in found.utterances}
    assert read == {
        "MSP-PODCAST_0001_0008": ("127", "anger"),
        "MSP-PODCAST_0001_0010": ("127", "neutral"),
        "MSP-PODCAST_0002_0001": ("45", "contempt"),
        "MSP-PODCAST_0003_0001": ("unknown-MSP-PODCAST_0003_0001", "happiness"),
        "MSP-PODCAST_0003_0002": ("unknown-MSP-PODCAST_0003_0002", "sadness"),
    }
    assert sorted(why for _, why in found.skipped) == [
        "consensus label O (other) is no emotion",
        "consensus label X (no agreement) is no emotion",
    ]
    assert found.rejects == ()


def test_msp_podcast_without_its_label_file_is_refused_naming_it(tmp_path):
    root = corpus(tmp_path, ["Audios/MSP-PODCAST_0001_0008.wav"])
    with pytest.raises(CorpusError, match="Labels/labels_consensus.csv"):
        discover(root, layout=layout("msp-podcast"))


def test_an_unreadable_file_is_left_to_featurize_to_reject_not_a_crash(tmp_path):
    root = corpus(tmp_path, ["DC/a01.wav", "DC/a02.wav"])
    (root / "DC" / "a03.wav").symlink_to(root / "gone.wav")  # a broken link
    found = discover(root, layout=layout("savee"))
    assert sorted(u.source for u in found.utterances) == ["DC/a01.wav", "DC/a02.wav", "DC/a03.wav"]
