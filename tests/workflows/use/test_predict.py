"""Using trained models (issue #13): saved models, predict, export, explain, report.

One tiny grid (att-Res and the SVM, one seed, 2 epochs on 32x32 synthetic spectrograms)
is trained once and shared by every test of this file.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from attres.saved import ModelMeta, SavedModelError
from featurize.store import load_features
from workflows.cli import app
from workflows.grid.config import TrainConfig
from workflows.grid.train_all import train_all
from workflows.results.tables import table_rows
from workflows.runs import load_model, load_records, save_model
from workflows.use.load import feature_config, spectrogram_of_file

TRIALS = {"att-Res": "att-res-paper-s0-f0", "SVM": "svm-paper-s0-f0"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(ray_local, synth_features, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("predict") / "runs")
    summary = train_all(
        synth_features, out, list(TRIALS), [0], TrainConfig(epochs=2, batch_size=8),
        progress=lambda _: None,
    )  # fmt: skip
    assert summary.failed == [] and summary.finished == 2
    return out


def split_test_ids(runs: str) -> list[str]:
    return json.loads((Path(runs) / "splits" / "paper-s0-f0.json").read_text())["test"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])


def test_trials_keep_their_final_model(runs, synth_features):
    models = Path(runs) / "models"
    assert sorted(p.name for p in models.iterdir()) == [
        "att-res-paper-s0-f0.pt", "svm-paper-s0-f0.json", "svm-paper-s0-f0.skops",
    ]  # fmt: skip
    saved = torch.load(models / "att-res-paper-s0-f0.pt", weights_only=True)
    features = load_features(synth_features)
    assert saved["model"] == "att-Res" and saved["num_classes"] == 6
    assert saved["label_names"] == list(features.label_names)
    assert saved["feature_config"] == features.config.to_dict()
    assert saved["std"] > 0 and all(t.device.type == "cpu" for t in saved["state_dict"].values())
    svm = load_model(runs, TRIALS["SVM"])
    assert (svm.kind, svm.meta.mean, svm.meta.std) == ("sklearn", 0.0, 1.0)


def test_saved_models_round_trip_through_a_uri_and_refuse_untrusted_types(tmp_path):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from attres.models import create_model

    model = create_model("att-Res0", num_classes=3)
    meta = ModelMeta("att-Res0", "t", ("a", "b", "c"), 1.5, 2.0, {"image_size": 16})
    save_model(f"file://{tmp_path}", meta, model, "torch")
    loaded = load_model(str(tmp_path), "t")
    assert loaded.meta == dataclasses.replace(meta, architecture=loaded.meta.architecture)
    assert loaded.kind == "torch" and loaded.warnings == []
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)
    evil = make_pipeline(FunctionTransformer(subprocess.call))
    meta = ModelMeta("SVM", "evil", ("a",), 0.0, 1.0, {"image_size": 16})
    save_model(str(tmp_path), meta, evil, "sklearn")
    with pytest.raises(SavedModelError, match="do not trust: subprocess.call"):
        load_model(str(tmp_path), "evil")
    with pytest.raises(SavedModelError, match="no saved model for trial missing"):
        load_model(str(tmp_path), "missing")


@pytest.mark.parametrize("model", list(TRIALS))
def test_predictions_agree_with_the_trials_own_evaluation(runs, synth_corpus, model):
    record = next(r for r in load_records(runs) if r.trial == TRIALS[model])
    labels = record.label_names
    test_ids = split_test_ids(runs)
    files = [str(synth_corpus / f"{uid}.wav") for uid in test_ids]
    result = invoke("predict", runs, *files, "--model", model, "--format", "json")
    assert result.exit_code == 0, result.output
    assert "averaged over 1 trials" in result.stderr
    predicted = json.loads(result.stdout)
    assert predicted["trials"] == [TRIALS[model]]
    assert predicted["scores"] == ("votes" if model == "SVM" else "probabilities")
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    for uid, item in zip(test_ids, predicted["files"], strict=True):
        assert item["file"].endswith(f"{uid}.wav") and item["error"] is None
        assert sum(item["probabilities"].values()) == pytest.approx(1.0)
        confusion[labels.index(uid.split("/")[1]), labels.index(item["emotion"])] += 1
    np.testing.assert_array_equal(confusion, record.confusion)


def test_predict_featurizes_exactly_as_the_pipeline(runs, synth_corpus, synth_features):
    features = load_features(synth_features)
    trained = load_model(runs, TRIALS["att-Res"])
    for uid in split_test_ids(runs)[:3]:
        row = features.spectrograms[list(features.utterance_ids).index(uid), 0]
        image = spectrogram_of_file(synth_corpus / f"{uid}.wav", feature_config(trained))
        np.testing.assert_array_equal(image, row)


def test_a_corrupt_file_fails_alone(runs, synth_corpus, tmp_path):
    folder = tmp_path / "audio" / "nested"
    folder.mkdir(parents=True)
    good = split_test_ids(runs)[:2]
    for uid in good:
        shutil.copy(synth_corpus / f"{uid}.wav", folder / f"{uid.replace('/', '-')}.wav")
    (folder / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" * 3)
    (folder / "notes.txt").write_text("not audio, not listed")
    result = invoke("predict", runs, str(tmp_path / "audio"), "--model", "att-Res")
    assert result.exit_code == 1, result.output
    lines = {Path(line.split()[0]).name: line for line in result.stdout.splitlines()[1:]}
    assert sorted(lines) == sorted(["broken.wav"] + [f"{u.replace('/', '-')}.wav" for u in good])
    assert "truncated WAV" in lines["broken.wav"]
    assert "failed" in result.stderr and "broken.wav: truncated WAV" in result.stderr
    for uid in good:
        row = lines[f"{uid.replace('/', '-')}.wav"].split()
        assert row[1] in load_model(runs, TRIALS["att-Res"]).meta.label_names
        assert sum(float(p) for p in row[2:8]) == pytest.approx(1.0, abs=0.01)


def test_export_onnx_gives_the_torch_probabilities(runs, synth_features, tmp_path):
    import onnxruntime

    out = tmp_path / "att-res.onnx"
    result = invoke("export", runs, "--model", "att-Res", "--seed", "0", "--out", str(out))
    assert result.exit_code == 0, result.output
    sidecar = json.loads(out.with_suffix(".json").read_text())
    trained = load_model(runs, TRIALS["att-Res"])
    assert sidecar["label_names"] == list(trained.meta.label_names) and sidecar["seed"] == 0
    assert (sidecar["mean"], sidecar["std"]) == (trained.meta.mean, trained.meta.std)
    assert sidecar["input"]["shape"] == [1, 1, 32, 32]
    features = load_features(synth_features)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for image in features.spectrograms[:4]:  # (1, 32, 32)
        x = trained.standardize(image[None])
        got = session.run(None, {"spectrogram": x})[0]
        np.testing.assert_allclose(got, trained.probabilities(image[None]), atol=1e-4)
    refused = invoke("export", runs, "--model", "svm", "--seed", "0", "--out", str(out))
    assert refused.exit_code == 2 and "scikit-learn model, not a network" in refused.output
    missing = invoke("export", runs, "--model", "att-Res", "--seed", "7", "--out", str(out))
    assert missing.exit_code == 2 and "no finished trial of att-Res with seed 7" in missing.output


def test_explain_draws_one_panel_per_attention_stage(runs, synth_corpus, tmp_path):
    uids = split_test_ids(runs)[:2]
    files = [str(synth_corpus / f"{uid}.wav") for uid in uids]
    result = invoke("explain", runs, *files, "--model", "att-Res", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    for uid in uids:
        png = tmp_path / f"{uid.replace('/', '_')}.png"
        # att-Res has attention in stages 2 and 3: two panels of 3.2 x 3.4 inches at 100 dpi
        assert png_size(png.read_bytes()) == (640, 340)
    refused = invoke("explain", runs, files[0], "--model", "SVM", "--out", str(tmp_path))
    assert refused.exit_code == 2 and "no spatial attention" in refused.output


class DomImages(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.images: list[str] = []
        self.headings: list[str] = []
        self._in_cell = self._in_heading = False

    def handle_starttag(self, tag, attrs):
        self._in_cell = tag == "td"
        self._in_heading = tag == "h2"
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        if self._in_cell:
            self.cells.append(data.strip())
        if self._in_heading:
            self.headings.append(data.strip())
            self._in_heading = False


def test_report_renders_in_headless_chromium(runs, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium here (.ci/run installs it)")
    out = tmp_path / "report.html"
    result = invoke("report", runs, "--out", str(out))
    assert result.exit_code == 0, result.output
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         out.as_uri()],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    page = DomImages()
    page.feed(dom)
    for row in table_rows(load_records(runs)):
        assert row["model"] in page.cells
    assert set(TRIALS.values()) <= set(page.cells)
    # the claims' forest plot, every run, 2 confusion matrices, the curves, 3 attention maps
    assert len(page.images) == 8
    assert page.headings[:3] == ["The paper's claims", "Tables", "Every model against att-Res"]
    for src in page.images:
        prefix, _, data = src.partition(",")
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(data, validate=True)[:8] == PNG_SIGNATURE


def test_a_file_named_twice_is_predicted_once(runs, synth_corpus):
    folder = synth_corpus / "spk01" / "angry"
    inside = sorted(folder.glob("*.wav"))
    result = invoke("predict", runs, str(folder), str(inside[0]), "--model", "att-Res",
                    "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert len(files) == len(inside)
    for item in files:
        assert sum(item["probabilities"].values()) == pytest.approx(1.0)


def test_probabilities_are_the_same_in_batches_of_any_size(runs, synth_features):
    trained = load_model(runs, TRIALS["att-Res"])
    images = load_features(synth_features).spectrograms[:5]
    whole = trained.probabilities(images)
    np.testing.assert_allclose(trained.probabilities(images, batch_size=2), whole, atol=1e-6)


def test_export_refuses_an_out_that_is_not_an_onnx_file(runs, tmp_path):
    for out in (tmp_path / "model.json", tmp_path / "m.a", tmp_path):
        result = invoke("export", runs, "--model", "att-Res", "--seed", "0", "--out", str(out))
        assert result.exit_code == 2 and "e.g. --out model.onnx" in result.output, out
    assert not (tmp_path / "model.json").exists()


def test_a_dollar_in_a_file_name_is_drawn_not_read_as_maths(runs, synth_corpus, tmp_path):
    source = synth_corpus / f"{split_test_ids(runs)[0]}.wav"
    odd = tmp_path / "a$_$b.wav"
    shutil.copy(source, odd)
    result = invoke("explain", runs, str(odd), str(source), "--model", "att-Res", "--out",
                    str(tmp_path / "maps"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "maps").glob("*.png"))) == 2


def copy_runs_with_a_second_seed(runs: str, to: Path) -> str:
    """RUNS with the att-Res trial once more, as seed 1 (the same model)."""
    shutil.copytree(runs, to)
    record = json.loads((to / "trials" / f"{TRIALS['att-Res']}.json").read_text())
    twin = record["trial"].replace("-s0-", "-s1-")
    record.update(trial=twin, seed=1)
    (to / "trials" / f"{twin}.json").write_text(json.dumps(record))
    saved = torch.load(to / "models" / f"{TRIALS['att-Res']}.pt", weights_only=True)
    torch.save({**saved, "trial": twin}, to / "models" / f"{twin}.pt")
    return str(to)


def test_explain_loads_only_the_trial_it_shows(runs, synth_corpus, tmp_path, monkeypatch):
    import workflows.use.load as load

    two = copy_runs_with_a_second_seed(runs, tmp_path / "runs")
    loaded = []
    monkeypatch.setattr(load, "load_model", lambda r, t: loaded.append(t) or load_model(r, t))
    wav = str(synth_corpus / f"{split_test_ids(runs)[0]}.wav")
    result = invoke("explain", two, wav, "--model", "att-Res", "--out", str(tmp_path / "m"))
    assert result.exit_code == 0, result.output
    assert loaded == [TRIALS["att-Res"]]
    result = invoke("predict", two, wav, "--model", "att-Res")
    assert result.exit_code == 0 and "averaged over 2 trials" in result.stderr
    assert len(loaded) == 3  # predict averages both


def test_saved_models_that_do_not_fit_say_why(runs, synth_corpus, tmp_path):
    models = Path(copy_runs_with_a_second_seed(runs, tmp_path / "runs")) / "models"
    pt = models / f"{TRIALS['att-Res']}.pt"
    saved = torch.load(pt, weights_only=True)
    assert saved["architecture"] and saved["code_version"].startswith("attres-flow ")
    torch.save({**saved, "architecture": "0" * 12}, pt)  # the code changed, the shapes not
    wav = str(synth_corpus / f"{split_test_ids(runs)[0]}.wav")
    result = invoke("predict", str(models.parent), wav, "--model", "att-Res")
    assert result.exit_code == 0, result.output
    assert "architecture 000000000000; this code builds" in result.stderr
    state = dict(saved["state_dict"])
    state.pop(next(iter(state)))
    torch.save({**saved, "state_dict": state}, pt)  # a weight missing
    with pytest.raises(SavedModelError, match="do not fit this code's att-Res"):
        load_model(str(models.parent), TRIALS["att-Res"])
    torch.save({"weights": 1}, pt)  # not ours
    with pytest.raises(SavedModelError, match="not a model saved by attres-flow"):
        load_model(str(models.parent), TRIALS["att-Res"])
    result = invoke("predict", str(models.parent), wav, "--model", "att-Res")
    assert result.exit_code == 2 and "not a model saved by attres-flow" in result.output
    (models / f"{TRIALS['SVM']}.json").write_text("{not json")
    with pytest.raises(SavedModelError, match="metadata is not JSON"):
        load_model(str(models.parent), TRIALS["SVM"])
    (models / f"{TRIALS['SVM']}.json").unlink()  # the pipeline without its metadata
    with pytest.raises(SavedModelError, match="cannot read the model of trial svm"):
        load_model(str(models.parent), TRIALS["SVM"])


def test_report_skips_a_trial_it_cannot_load_and_says_why(runs, tmp_path):
    broken = Path(copy_runs_with_a_second_seed(runs, tmp_path / "runs"))
    torch.save({"weights": 1}, broken / "models" / f"{TRIALS['att-Res']}.pt")
    result = invoke("report", str(broken), "--out", str(tmp_path / "r.html"), "--attention", "1")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    assert f"Skipped trial {TRIALS['att-Res']}: " in page and "not a model saved by" in page
    assert "att-res-paper-s1-f0: test utterances" in page  # the next trial's maps instead
