"""What every use of a trained model starts from: its saved trials, and recordings as images.

Each recording is featurized exactly as the trials' features were: the saved feature
configuration, the featurize pipeline's own functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from attres.saved import SavedModel, SavedModelError
from featurize.audio import AUDIO_EXTENSIONS, BadAudioError, decode_audio, to_mono_at_rate
from featurize.config import FeatureConfig
from featurize.spectrogram import TooShortError, spectrogram_image
from workflows.runs import has_model, load_model, model_records


class UseError(ValueError):
    """A trained model cannot be used as asked: no trials of it in RUNS, none with a saved
    model, nothing to apply it to, or a kind of model the command does not take."""


def feature_config(saved: SavedModel) -> FeatureConfig:
    """The feature settings the model was trained on, to featurize new recordings with."""
    return FeatureConfig.from_dict(saved.meta.feature_config)


def audio_files(paths: list[Path]) -> list[Path]:
    """Files as given, and the audio files under folders (recursively, sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            found.append(path)
    return found


def spectrogram_of_file(path: Path, config: FeatureConfig) -> np.ndarray:
    """One recording -> its (H, W) log-power image, as ``featurize.pipeline.featurize_file``."""
    data = Path(path).read_bytes()
    samples, rate = decode_audio(data)
    signal = to_mono_at_rate(samples, rate, config.sample_rate)
    return spectrogram_image(signal, config)


def featurize_files(
    paths: list[Path], config: FeatureConfig
) -> tuple[dict[Path, np.ndarray], dict[Path, str]]:
    """(images by path, error reason by path) of each recording under ``config``."""
    images, errors = {}, {}
    for path in paths:
        try:
            images[path] = spectrogram_of_file(path, config)
        except (BadAudioError, TooShortError, OSError) as err:
            errors[path] = str(err) or type(err).__name__
        except Exception as err:  # a decoder bug must not take the other files down
            errors[path] = f"unexpected {type(err).__name__}: {err}"
    return images, errors


def load_model_trials(runs: str, model: str, seed: int | None = None) -> list[SavedModel]:
    """The saved models of every finished trial of ``model`` (of one seed, if given)."""
    try:
        records = model_records(runs, model)
    except ValueError as err:  # an unknown model name
        raise UseError(str(err)) from err
    if seed is not None:
        records = [r for r in records if r.seed == seed]
    which = f"{model}{'' if seed is None else f' seed {seed}'}"
    if not records:
        raise UseError(f"no finished trials of {which} under {runs}/trials")
    saved = [r.trial for r in records if has_model(runs, r.trial)]
    if not saved:
        raise UseError(
            f"none of the {len(records)} trials of {which} under {runs} kept its model "
            "(trained before models were saved?); train again into a new RUNS"
        )
    try:
        trained = [load_model(runs, trial) for trial in saved]
    except SavedModelError as err:
        raise UseError(str(err)) from err
    labels = {t.meta.label_names for t in trained}
    if len(labels) > 1:
        raise UseError(f"the trials of {which} disagree on the labels: {sorted(labels)}")
    return trained
