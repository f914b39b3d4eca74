"""A corpus's own partition (--protocol predefined) and leave-one-session-out (--group session)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from featurize.store import load_features
from tests.featurize.test_corpora import msp_podcast
from workflows.cli import app
from workflows.grid.config import TrainConfig
from workflows.grid.partition import (
    PartitionError,
    partition_from_emobox,
    partition_from_msp_podcast,
    read_partition,
)
from workflows.grid.plan import GridError, plan_grid
from workflows.grid.trial import tabled_protocol
from workflows.runs import load_records

IDS = np.asarray(["spk01/angry/s0201", "spk01/sad/s0201", "spk02/angry/s0201", "spk02/sad/s0201"])


def write(path: Path, rows: list[str]) -> Path:
    path.write_text("utterance,fold,split\n" + "".join(f"{row}\n" for row in rows))
    return path


def test_utterances_are_found_by_id_or_by_a_longer_or_shorter_path(tmp_path):
    csv = write(tmp_path / "p.csv", [
        "spk01/angry/s0201,1,train",  # the id itself
        "downloads/casia/spk01/sad/s0201.wav,1,train",  # EmoBox's longer path
        "spk02/angry/s0201.wav,1,validation",
        "sad/s0201.wav,1,test",  # shorter, but two clips end so: not found
        "spk02/sad/s0201.flac,1,test",
        "elsewhere/x.wav,1,test",
        "downloads/AudioWAV/s0201.wav,1,test",  # ends in a file name four clips share: not found
    ])  # fmt: skip
    partition = read_partition(csv, IDS)
    assert partition.folds == ("1",)
    assert partition.part(0, "train").tolist() == [0, 1]
    assert partition.part(0, "validation").tolist() == [2]
    assert partition.part(0, "test").tolist() == [3]
    assert partition.unmatched == (
        "sad/s0201.wav",
        "elsewhere/x.wav",
        "downloads/AudioWAV/s0201.wav",
    )
    other = np.asarray(["CremaTrain/1001_DFA_ANG_XX", "CremaTest/1001_DFA_SAD_XX"])
    csv = write(
        tmp_path / "q.csv",
        [
            "downloads/cremad/AudioWAV/1001_DFA_SAD_XX.wav,1,test",
            "downloads/cremad/AudioWAV/1001_DFA_ANG_XX.wav,1,train",
        ],
    )
    partition = read_partition(csv, other)  # a shorter path inside a longer one
    assert partition.part(0, "test").tolist() == [1] and partition.part(0, "train").tolist() == [0]


def test_a_clip_of_the_same_name_in_another_speakers_folder_is_not_taken(tmp_path):
    """Features of two CASIA speakers, a partition of more: 201.wav of a speaker the features
    lack is no clip of theirs; a name one entry and one id have is found, and counted."""
    ids = np.asarray(["wangzhe/angry/201", "liuchanhg/angry/202", "CremaTrain/1001_DFA_ANG_XX"])
    csv = write(tmp_path / "p.csv", [
        "downloads/casia/zhaoquanyin/angry/201.wav,1,test",
        "downloads/casia/wangzhe/angry/201.wav,1,train",
        "downloads/casia/zhaoquanyin/angry/202.wav,1,test",
        "downloads/casia/liuchanhg/angry/202.wav,1,train",
        "downloads/cremad/AudioWAV/1001_DFA_ANG_XX.wav,1,test",
        "downloads/cremad/AudioWAV/1001_DFA_ANG_XX.wav,2,train",  # once in every fold
        "downloads/casia/wangzhe/angry/201.wav,2,test",
    ])  # fmt: skip
    partition = read_partition(csv, ids)
    assert partition.part(0, "train").tolist() == [0, 1]
    assert partition.part(0, "test").tolist() == [2] and partition.by_name == 2
    assert partition.part(1, "train").tolist() == [2]
    assert partition.unmatched == (
        "downloads/casia/zhaoquanyin/angry/201.wav",
        "downloads/casia/zhaoquanyin/angry/202.wav",
    )


def test_partition_files_that_cannot_be_read_are_refused_naming_the_file(tmp_path):
    folder = tmp_path / "savee" / "fold_1"
    folder.mkdir(parents=True)
    (folder / "savee_train_fold_1.jsonl").write_text('{"wav": "a.wav"}\nnot json\n')
    result = CliRunner().invoke(app, ["partition", "emobox", str(tmp_path / "savee"),
                                      "--out", str(tmp_path / "p.csv")])  # fmt: skip
    assert result.exit_code == 2
    assert "savee_train_fold_1.jsonl:2: not a JSON object with a 'wav' path" in result.output
    (folder / "savee_train_fold_1.jsonl").write_text('{"wav": "a.wav"}\n')
    (folder / "savee_dev_fold_1.jsonl").write_text('{"wav": "b.wav"}\n')
    result = CliRunner().invoke(app, ["partition", "emobox", str(tmp_path / "savee"),
                                      "--out", str(tmp_path / "p.csv")])  # fmt: skip
    assert result.exit_code == 2 and "neither a _train_fold_ nor a _test_fold_" in result.output
    nowhere = CliRunner().invoke(app, ["partition", "msp-podcast", str(tmp_path),
                                       "--out", str(tmp_path / "no" / "p.csv")])  # fmt: skip
    assert nowhere.exit_code == 2 and "labels_consensus.csv" in nowhere.output


@pytest.mark.parametrize(
    "rows, message",
    [
        (["spk01/angry/s0201,1,train", "spk01/angry/s0201,1,test"], "listed twice in fold 1"),
        (["spk01/angry/s0201,1,dev"], "split 'dev' is not one of"),
        (["spk01/angry/s0201,1,test"], "fold 1 needs train rows"),
        (["nobody/x,1,train"], "none of its 1 utterances is in the features"),
    ],
)
def test_a_partition_that_cannot_be_used_is_refused_saying_why(tmp_path, rows, message):
    with pytest.raises(PartitionError, match=message):
        read_partition(write(tmp_path / "p.csv", rows), IDS)


def test_emobox_folds_and_msp_podcasts_split_become_partitions(tmp_path):
    for fold in (1, 2):
        folder = tmp_path / "casia" / f"fold_{fold}"
        folder.mkdir(parents=True)
        for part, ids in (("train", IDS[: 2 * fold]), ("test", IDS[2 * fold :])):
            (folder / f"casia_{part}_fold_{fold}.jsonl").write_text("".join(
                json.dumps({"key": i, "wav": f"downloads/casia/{i}.wav", "emo": "x"}) + "\n"
                for i in ids
            ))  # fmt: skip
    entries = partition_from_emobox(tmp_path / "casia")
    assert sorted(entries)[:2] == [
        ("downloads/casia/spk01/angry/s0201.wav", "1", "train"),
        ("downloads/casia/spk01/angry/s0201.wav", "2", "train"),
    ]
    assert len(entries) == 8
    msp = partition_from_msp_podcast(msp_podcast(tmp_path / "msp"))
    assert ("Audios/MSP-PODCAST_0001_0010.wav", "1", "validation") in msp
    assert ("Audios/MSP-PODCAST_0002_0001.wav", "1", "test") in msp
    assert len(msp) == 7  # every labelled segment: the reader, not the partition, skips O and X


def test_a_predefined_grid_trains_and_tests_on_the_files_folds_from_a_relative_path(
    synth_features, tmp_path
):
    """Two folds, each one speaker's clips tested; run as a user would, from the folder the
    partition is in, naming it by a relative path."""
    data = load_features(synth_features)
    rows = [
        f"{uid}.wav,{fold},{'test' if speaker == tested else 'train'}"
        for fold, tested in enumerate(("spk01", "spk02"))
        for uid, speaker in zip(data.utterance_ids, data.speakers, strict=True)
    ]
    write(tmp_path / "folds.csv", rows)
    args = ["train-all", synth_features, "--out", "runs", "--protocol", "predefined",
            "--partition", "folds.csv", "--models", "CNN", "--epochs", "1", "--batch-size", "8",
            "--seeds", "0,1", "--quiet"]  # fmt: skip
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(app, args)
    finally:
        os.chdir(here)
    assert result.exit_code == 0, result.output
    records = sorted(load_records(str(tmp_path / "runs")), key=lambda r: (r.seed, r.fold))
    assert [(r.protocol, r.seed, r.fold, r.n_folds, r.n_test) for r in records] == [
        ("predefined", 0, 0, 2, 18),
        ("predefined", 0, 1, 2, 18),
        ("predefined", 1, 0, 2, 18),  # each seed a trial of its own, on the same rows
        ("predefined", 1, 1, 2, 18),
    ]
    assert records[0].test_ids_sha1 == records[2].test_ids_sha1
    split = json.loads((tmp_path / "runs" / "splits" / f"{records[0].split}.json").read_text())
    assert split["held_out_speakers"] == ["spk01"] and len(split["train"]) == 18
    assert split["partition_fold"] == "0"


def test_without_a_partition_or_with_a_validation_speaker_predefined_is_refused(synth_features):
    runner = CliRunner()
    args = ["train-all", synth_features, "--out", "unused", "--models", "CNN"]
    bare = runner.invoke(app, [*args, "--protocol", "predefined"])
    assert bare.exit_code == 2 and "--partition CSV go together" in bare.output
    both = runner.invoke(app, [*args, "--protocol", "predefined", "--partition", "x.csv",
                               "--validation-speaker"])  # fmt: skip
    assert both.exit_code == 2 and "--validation-speaker needs --protocol loso" in both.output


def test_validation_part_scores_the_partitions_validation_rows(synth_features, tmp_path):
    data = load_features(synth_features)
    parts = {"spk01": "train", "spk02": "validation"}
    rows = [
        f"{uid},a,{parts[spk]}" for uid, spk in zip(data.utterance_ids, data.speakers, strict=True)
    ]
    cfg = TrainConfig(
        protocol="predefined", partition=str(write(tmp_path / "p.csv", rows)), validation_part=True
    )
    (spec,) = plan_grid(data, synth_features, "fp", str(tmp_path), ["CNN"], [0], cfg)
    assert set(data.speakers[list(spec.test_rows)]) == {"spk02"}
    assert tabled_protocol(spec) == "predefined-validation"
    with pytest.raises(GridError, match="fold a has no test rows"):
        plan_grid(data, synth_features, "fp", str(tmp_path), ["CNN"], [0],
                  dataclasses.replace(cfg, validation_part=False))  # fmt: skip


def test_leave_one_session_out_holds_out_both_speakers_of_a_session(synth_features, tmp_path):
    data = load_features(synth_features)
    n = len(data.speakers)
    speakers = np.asarray([f"Ses0{1 + i % 3}{'FM'[i % 2]}" for i in range(n)])  # 6 speakers
    data = dataclasses.replace(data, speakers=speakers)
    cfg = TrainConfig(protocol="loso", group="session")
    specs = plan_grid(data, synth_features, "fp", str(tmp_path), ["CNN"], [0], cfg)
    assert len(specs) == 3  # sessions, not speakers
    for spec in specs:
        tested = set(speakers[list(spec.test_rows)])
        assert len(tested) == 2 and len({s[:5] for s in tested}) == 1  # F and M of one session
        assert not {s[:5] for s in speakers[list(spec.train_rows)]} & {s[:5] for s in tested}
        assert tabled_protocol(spec) == "loso-by-session"
    with pytest.raises(GridError, match="speakers that name none: spk01"):
        plan_grid(load_features(synth_features), synth_features, "fp", str(tmp_path), ["CNN"],
                  [0], cfg)  # fmt: skip


def test_a_clip_missing_from_the_features_is_named_once_however_many_folds_list_it(
    synth_features, tmp_path
):
    """EmoBox lists each clip once in every fold: the note counts clips, not rows."""
    data = load_features(synth_features)
    rows = []
    for fold in ("1", "2"):
        parts = (
            {"spk01": "train", "spk02": "test"}
            if fold == "1"
            else {"spk01": "test", "spk02": "train"}
        )
        rows += [
            f"{uid},{fold},{parts[spk]}"
            for uid, spk in zip(data.utterance_ids, data.speakers, strict=True)
        ]
        rows.append(f"gone/never-featurized.wav,{fold},train")
    cfg = TrainConfig(protocol="predefined", partition=str(write(tmp_path / "p.csv", rows)))
    notes: list[str] = []
    plan_grid(data, synth_features, "fp", str(tmp_path), ["CNN"], [0], cfg, note=notes.append)
    (said,) = [n for n in notes if "left out" in n]
    assert "1 utterances of" in said and "(2 rows)" in said
    assert said.count("never-featurized") == 1
