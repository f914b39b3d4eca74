"""What every use of a trained model starts from: its saved trials, and recordings as images.

Each recording is featurized exactly as the trials' features were: the saved feature
configuration, the featurize pipeline's own functions. A model that scales each speaker by
that speaker's own statistics (att-Res+, ``--normalize speaker``) also needs to know who
speaks in each recording (``Speakers``): the statistics of a speaker come from all of that
speaker's recordings in the call, as training took them from all of the speaker's clips.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attres.saved import SavedModel, SavedModelError
from featurize.audio import AUDIO_EXTENSIONS, BadAudioError, decode_audio, to_mono_at_rate
from featurize.config import FeatureConfig
from featurize.functionals import Extractor, FunctionalsError, opensmile_version
from featurize.spectrogram import TooShortError, spectrogram_image
from workflows.runs import has_model, load_model, model_records


class UseError(ValueError):
    """A trained model cannot be used as asked: no trials of it in RUNS, none with a saved
    model, nothing to apply it to, or a kind of model the command does not take."""


def feature_config(saved: SavedModel) -> FeatureConfig:
    """The feature settings the model was trained on, to featurize new recordings with."""
    return FeatureConfig.from_dict(saved.meta.feature_config)


# Below this much audio a speaker's statistics are said to be thin: training took them from
# all of a speaker's clips in its split (on CASIA, 300 clips, about ten minutes).
THIN_SPEAKER_S = 60.0


def audio_files(paths: list[Path]) -> list[Path]:
    """Files as given, and the audio files under folders (recursively, sorted); each file
    once, however often it is named (a folder and a file in it)."""
    found: dict[Path, Path] = {}  # resolved -> as first named
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            inside = [path]
        for file in inside:
            found.setdefault(file.resolve(), file)
    return list(found.values())


@dataclass(frozen=True)
class Speakers:
    """Who speaks in the recordings of one call: one ``name`` for all (``--speaker``), or a
    manifest's speaker per file (``--manifest``), or nobody said."""

    name: str | None = None
    by_file: dict[Path, str] = field(default_factory=dict)  # resolved path -> speaker

    @classmethod
    def from_manifest(cls, manifest: Path) -> Speakers:
        """A CSV with columns ``path, speaker`` (paths relative to the CSV)."""
        try:
            with open(manifest, newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as err:
            raise UseError(f"cannot read the manifest {manifest}: {err}") from err
        if not rows or not {"path", "speaker"} <= set(rows[0]):
            raise UseError(f"{manifest}: a manifest needs the columns path, speaker")
        base = manifest.resolve().parent
        return cls(by_file={(base / r["path"]).resolve(): r["speaker"] for r in rows})

    @property
    def given(self) -> bool:
        return self.name is not None or bool(self.by_file)

    def of(self, files: list[Path]) -> np.ndarray:
        """(N,) speaker of each file; UseError naming the files a manifest lacks."""
        if self.name is not None:
            return np.asarray([self.name] * len(files))
        missing = [str(f) for f in files if f.resolve() not in self.by_file]
        if missing:
            raise UseError(f"not in the manifest: {', '.join(missing[:5])}")
        return np.asarray([self.by_file[f.resolve()] for f in files])


NOBODY = Speakers()


def speakers_for(
    trained: list[SavedModel], files: list[Path], speakers: Speakers
) -> np.ndarray | None:
    """The speaker of each file when a model needs them (per-speaker scaling), else None.

    A speaker-scaled model with no speaker given is refused: scaling the files of one call
    together would make each file's result depend on which other files share the call.
    """
    if not any(t.per_speaker for t in trained):
        return None
    if not speakers.given:
        raise UseError(
            f"{trained[0].meta.model} scales each speaker by that speaker's own statistics; "
            "say who speaks: --speaker NAME (every file one speaker) or --manifest CSV "
            "(columns path, speaker; paths relative to the CSV)"
        )
    return speakers.of(files)


def thin_speakers(speakers: np.ndarray, seconds: list[float]) -> list[str]:
    """A warning for each speaker whose statistics rest on less than THIN_SPEAKER_S."""
    notes = []
    for speaker in dict.fromkeys(speakers.tolist()):
        mine = [s for s, who in zip(seconds, speakers, strict=True) if who == speaker]
        if sum(mine) < THIN_SPEAKER_S:
            notes.append(
                f"speaker {speaker}: statistics from {len(mine)} recording(s), "
                f"{sum(mine):.1f} s of audio (under {THIN_SPEAKER_S:.0f} s; training used "
                "all of a speaker's clips): expect less reliable scaling"
            )
    return notes


def spectrogram_of_file(path: Path, config: FeatureConfig) -> np.ndarray:
    """One recording -> its (H, W) log-power image, as ``featurize.pipeline.featurize_file``."""
    return _featurize(path, config)[0]


def _featurize(
    path: Path, config: FeatureConfig, extractor: Extractor | None = None
) -> tuple[np.ndarray, float]:
    samples, rate = decode_audio(Path(path).read_bytes())
    signal = to_mono_at_rate(samples, rate, config.sample_rate)
    if extractor is None:
        return spectrogram_image(signal, config), len(samples) / rate
    vectors = extractor(signal, config.sample_rate)
    return np.concatenate([vectors[name] for name in extractor.sets]), len(samples) / rate


@dataclass
class Recordings:
    # (H, W) log-power image of each readable file, or with openSMILE sets its (D,) vector,
    # or with an encoder its (layers + 1, dim, 1) embeddings
    images: dict[Path, np.ndarray]
    seconds: dict[Path, float]  # its duration
    errors: dict[Path, str]  # why each other file could not be read
    notes: list[str] = field(default_factory=list)  # warnings, e.g. another encoder revision

    def batch(self, files: list[Path]) -> np.ndarray:
        """The raw input of a model for ``files``: (N, 1, H, W) images, (N, D, 1, 1) or
        (N, layers + 1, dim, 1)."""
        x = np.stack([self.images[f] for f in files])
        if x.ndim == 4:
            return x
        return x[:, None] if x.ndim == 3 else x[:, :, None, None]


def featurize_files(
    paths: list[Path],
    config: FeatureConfig,
    functionals: tuple[str, ...] = (),
    encoder: dict[str, Any] | None = None,
) -> Recordings:
    """Each recording under ``config`` (as the openSMILE ``functionals`` sets, side by side,
    if given, or as the embeddings of the ``encoder`` whose settings are given), or the
    reason it failed."""
    if encoder:
        return embed_files(paths, encoder)
    done = Recordings({}, {}, {})
    extractor = Extractor(functionals) if functionals else None
    for path in paths:
        try:
            done.images[path], done.seconds[path] = _featurize(path, config, extractor)
        except (BadAudioError, TooShortError, FunctionalsError, OSError) as err:
            done.errors[path] = str(err) or type(err).__name__
        except Exception as err:  # a decoder bug must not take the other files down
            done.errors[path] = f"unexpected {type(err).__name__}: {err}"
    return done


def embed_files(paths: list[Path], settings: dict[str, Any]) -> Recordings:
    """Each recording's (layers + 1, dim, 1) embeddings by the encoder of ``settings`` (an
    encoder set's, as featurized: the same model and revision, else a warning), or the
    reason it failed; on this machine's GPU if it has one."""
    import torch

    from featurize.embedding import Embedder, EncoderInputError
    from featurize.encoders import EncoderError, resolve_trained

    try:
        source, notes = resolve_trained(settings)
    except EncoderError as err:
        raise UseError(str(err)) from err
    embedder = Embedder(source, "cuda" if torch.cuda.is_available() else "cpu")
    done = Recordings({}, {}, {}, notes)
    inputs: dict[Path, tuple[np.ndarray, int]] = {}
    for path in paths:
        try:
            samples, rate = decode_audio(Path(path).read_bytes())
            signal = to_mono_at_rate(samples, rate, embedder.sample_rate)
            inputs[path] = embedder.prepare(signal), len(signal)
            done.seconds[path] = len(samples) / rate
        except (BadAudioError, EncoderInputError, OSError) as err:
            done.errors[path] = str(err) or type(err).__name__
    order = sorted(inputs, key=lambda p: inputs[p][1])  # neighbours in length, less padding
    if order:
        values = embedder.embed([inputs[p][0] for p in order], [inputs[p][1] for p in order])
        done.images.update({p: v[..., None] for p, v in zip(order, values, strict=True)})
    return done


def opensmile_changes(functionals: dict[str, dict]) -> list[str]:
    """A warning per openSMILE set a model was trained on with another openSMILE than this
    one: its functionals of new recordings may differ from those it learned."""
    if not functionals:
        return []
    here = opensmile_version()
    return [
        f"{name} functionals were computed by openSMILE {settings['opensmile']} for training, "
        f"by {here} here: they may differ"
        for name, settings in functionals.items()
        if settings.get("opensmile") != here
    ]


def load_model_trials(
    runs: str, model: str, seed: int | None = None, first_only: bool = False
) -> list[SavedModel]:
    """The saved models of every finished trial of ``model`` (of one seed, if given), or
    with ``first_only`` of the first such trial in name order alone."""
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
        trained = [load_model(runs, trial) for trial in saved[: 1 if first_only else None]]
    except SavedModelError as err:
        raise UseError(str(err)) from err
    for t in trained:
        t.warnings.extend(opensmile_changes(t.meta.functionals))
    labels = {t.meta.label_names for t in trained}
    if len(labels) > 1:
        raise UseError(f"the trials of {which} disagree on the labels: {sorted(labels)}")
    return trained
