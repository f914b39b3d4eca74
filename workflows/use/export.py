"""export: one trained network of RUNS as an ONNX graph, with what a runtime needs beside it.

The graph takes a standardized spectrogram (1, 1, H, W) and returns class probabilities
(1, classes) (the network's softmax). The JSON sidecar next to it holds the label names,
the feature settings the spectrogram must be made with, and the mean and std to
standardize it with: ``x = (log_power_image - mean) / std``.

The graph comes from ``torch.onnx.export(..., dynamo=True)``: the TorchScript exporter
cannot export AlexNet's adaptive pooling, and is deprecated in recent torch releases.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path

from attres.inputs import InputSettings
from attres.saved import SavedModel, SavedModelError
from featurize.location import Location
from workflows.runs import load_model, model_records
from workflows.use.load import UseError

INPUT_NAME = "spectrogram"
OUTPUT_NAME = "probabilities"


@dataclass(frozen=True)
class Exported:
    trial: str
    onnx: Path
    sidecar: Path
    warnings: list[str]  # e.g. the code changed since the model was saved


def find_trial(runs: str, model: str, seed: int, fold: int | None = None) -> str:
    """The one trial of ``model`` with ``seed`` (and ``fold``, needed when there are several)."""
    try:
        records = [r for r in model_records(runs, model) if r.seed == seed]
    except ValueError as err:  # an unknown model name
        raise UseError(str(err)) from err
    if fold is not None:
        records = [r for r in records if r.fold == fold]
    if not records:
        which = f"seed {seed}" + ("" if fold is None else f" fold {fold}")
        raise UseError(f"no finished trial of {model} with {which} under {runs}/trials")
    if len(records) > 1:
        folds = ", ".join(str(r.fold) for r in records)
        raise UseError(f"{model} seed {seed} has folds {folds}; choose one with --fold")
    return records[0].trial


def onnx_graph(trained: SavedModel) -> bytes:
    """The network with a softmax on top as an ONNX graph of input (1, C, H, W)."""
    import torch

    wrapped = torch.nn.Sequential(trained.model, torch.nn.Softmax(dim=1)).eval()
    example = torch.zeros(1, *trained.input_shape)
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter's dependency)
    except ImportError as err:
        raise UseError(
            "ONNX export needs onnx and onnxscript: pip install 'attres-flow[export]'"
        ) from err
    graph = io.BytesIO()
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
        torch.onnx.export(
            wrapped,
            (example,),
            graph,  # type: ignore[arg-type]
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            external_data=False,
        )
    return graph.getvalue()


def input_meaning(
    inputs: InputSettings, per_channel: bool = False, functionals: tuple[str, ...] = ()
) -> str:
    """How to make the graph's input from a log-power image (or a clip's openSMILE
    ``functionals``), in words; ``per_channel``: the model's standardizer has a mean and std
    per channel."""
    if functionals:
        steps = [
            f"the clip's openSMILE {' and '.join(functionals)} functionals side by side as "
            "channels of one pixel (featurize.functionals.Extractor, 16 kHz mono)"
        ]
        if inputs.normalize == "speaker":
            steps.append(
                "each speaker's functionals z-scored over that speaker's recordings "
                "(attres.inputs.speaker_standardize)"
            )
        return "; ".join([*steps, "then (x - mean) / std per channel"])
    steps = []
    if inputs.deltas:
        steps.append(
            f"channels: the image and {inputs.deltas} time deltas (attres.inputs.add_deltas)"
        )
    if inputs.normalize == "speaker":
        steps.append(
            "each speaker's images standardized per channel and frequency row over "
            "that speaker's recordings (attres.inputs.speaker_standardize)"
        )
    scale = "(x - mean) / std" + (" per channel" if per_channel else "")
    return "; ".join([*steps, f"then {scale}, rows = frequency"])


def export_onnx(runs: str, model: str, seed: int, out: Path, fold: int | None = None) -> Exported:
    """Export a trial's saved network to ``out`` (.onnx) and ``out`` with .json (sidecar)."""
    import torch

    if out.is_dir() or out.suffix.lower() != ".onnx":
        what = (
            "a folder"
            if out.is_dir()
            else f"not an .onnx file (its settings go to {out.stem}.json)"
        )
        raise UseError(f"--out {out} is {what}; name the graph file, e.g. --out model.onnx")

    trial = find_trial(runs, model, seed, fold)
    try:
        trained = load_model(runs, trial)
    except SavedModelError as err:
        raise UseError(str(err)) from err
    meta = trained.meta
    if trained.kind != "torch":
        raise UseError(
            f"{meta.model} is a scikit-learn model, not a network; only the torch "
            "models export to ONNX (its saved pipeline is RUNS/models/<trial>.skops)"
        )
    graph = onnx_graph(trained)
    record = next(r for r in model_records(runs, model) if r.trial == trial)
    sidecar = {
        "model": meta.model,
        "trial": trial,
        "seed": record.seed,
        "fold": record.fold,
        "label_names": list(meta.label_names),
        "mean": meta.mean,
        "std": meta.std,
        "feature_config": meta.feature_config,
        "inputs": dataclasses.asdict(meta.inputs),
        "input": {
            "name": INPUT_NAME,
            "shape": [1, *trained.input_shape],
            "meaning": input_meaning(
                meta.inputs, not isinstance(meta.mean, float), trained.functionals
            ),
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": [1, len(meta.label_names)],
            "meaning": "class probabilities, in label_names order",
        },
        "torch_version": torch.__version__,
    }
    json_path = out.with_suffix(".json")
    Location(out).write(graph)
    Location(json_path).write(json.dumps(sidecar, indent=2))
    return Exported(trial, out, json_path, trained.warnings)
