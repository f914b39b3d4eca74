"""Typed configuration of a train-all run and of each of its trials."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from attres.inputs import InputSettings
from attres.models import model_info, model_kind
from attres.recipe import Recipe
from attres.splits import Protocol

# Keys that older runs saved and that no longer exist (nor change results): dropped when a
# saved configuration is read (``TrainConfig.from_dict``, the one place that upgrades one).
RETIRED_KEYS = {"checkpoint_every"}
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
# Settings that do not change results (resources, checkpointing); the others must match.
# Settings added since checkpoints were named by a hash of the settings: at their defaults
# they are left out of ``result_settings``, so the runs before them keep their names.
LATER_KEYS = {"stream": False, "extra_train": (), "extra_weight": 1.0}
RESOURCE_KEYS = {
    "cpus_per_trial", "gpus_per_trial", "workers_per_trial", "checkpoint_s", "max_failures",
}  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    """What every trial of a grid shares. Saved resolved next to the results."""

    epochs: int = 25  # the paper's setting
    # CPU throughput is flat from 32 to 128 (docs/performance.md); 32 gives twice the updates
    # per epoch of 64 on a ~1000-clip corpus
    batch_size: int = 32
    lr: float = 1e-3  # Adam's default rate; the paper gives none
    weight_decay: float = 0.0  # plain Adam, as the paper describes
    # The paper gives no schedule. Cosine was chosen on a validation split of CASIA's
    # training data: the final epoch, whose test figure is reported, is then stable
    # (docs/results/README.md); --schedule constant keeps the rate fixed.
    schedule: str = "cosine"  # constant | cosine (per-step decay to 0, after a warm-up)
    warmup_epochs: float = 1.0  # linear warm-up of the cosine schedule
    label_smoothing: float = 0.0
    mixup: float = 0.0  # Beta(alpha, alpha) mixup; 0: off
    spec_masks: int = 0  # SpecAugment frequency and time masks per example; 0: off
    validation: float = 0.0  # > 0: hold out this fraction of each training split and
    # report on it instead of the test split (for choosing a recipe; the test is never read)
    # loso only: in each fold hold out the next training speaker (nested leave-one-speaker-
    # out) and report on that speaker instead of the test speaker, who is never read
    validation_speaker: bool = False
    normalize: str = "global"  # global | speaker: each speaker scaled by their own statistics
    deltas: int = 0  # extra input channels: 1 adds the time derivative, 2 also the second
    protocol: str = "paper"  # paper | loso | kfold | speaker-kfold | predefined
    k: int = 5  # folds of the kfold protocol
    # loso and speaker-kfold hold out whole speakers, or with "session" whole recording
    # sessions (IEMOCAP's leave-one-session-out: both speakers of a session together)
    group: str = "speaker"
    partition: str = ""  # predefined: the CSV of utterance, fold, split (absolute path)
    # predefined: score the partition's validation rows instead of its test rows (unread)
    validation_part: bool = False
    # multi-corpus training: other corpora's FEATURES (absolute locations) whose clips of the
    # target's classes join every fold's training side (never validation or test), each
    # corpus's speakers scaled within it, every such row weighted extra_weight
    extra_train: tuple[str, ...] = ()
    extra_weight: float = 1.0
    cpus_per_trial: float = 1.0  # CPUs reserved for one trial's training worker
    gpus_per_trial: float = 0.0  # GPU share per trial; fractions pack small models on one GPU
    # arithmetic on CUDA (CPU training is always fp32): auto = bf16 where the GPU runs it
    # natively (compute capability 8.0 and up), else fp16 with a gradient scaler
    precision: str = "auto"  # auto | bf16 | fp16 | fp32
    workers_per_trial: int = 1  # > 1: one model trained data-parallel (DDP) on Ray Train
    # a network's rows streamed from the Parquet shards by Ray Data to its Ray Train
    # workers (no process holds the split), instead of gathered from the grid's shared copy
    stream: bool = False
    # Seconds of training between checkpoints. A ResNet-18 state with Adam's two moments
    # holds three copies of its 11M weights: after every short epoch it would cost more
    # than it saves.
    checkpoint_s: float = 120.0
    max_failures: int = 2  # retries of a failed trial, from its last checkpoint

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_train", tuple(self.extra_train))  # a list, from JSON
        Protocol(self.protocol)  # raises on an unknown protocol
        self.inputs()  # raises on an unknown normalization or delta order
        inner = self.protocol == "loso" or (self.protocol == "speaker-kfold" and self.k >= 3)
        if self.validation_speaker and (not inner or self.validation):
            raise ValueError(
                "--validation-speaker needs --protocol loso (or speaker-kfold, --k 3 or more) "
                "and no --validation"
            )
        if (self.protocol == "predefined") != bool(self.partition):
            raise ValueError("--protocol predefined and --partition CSV go together")
        if self.validation_part and (self.protocol != "predefined" or self.validation):
            raise ValueError("--validation-part needs --protocol predefined and no --validation")
        if self.group not in ("speaker", "session"):
            raise ValueError(f"group must be 'speaker' or 'session', got {self.group!r}")
        if self.group != "speaker" and self.protocol not in ("loso", "speaker-kfold"):
            raise ValueError("--group session applies to --protocol loso or speaker-kfold")
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise ValueError("epochs >= 1, batch_size >= 2 and lr > 0 are required")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if not 0 <= self.validation < 1 or not 0 <= self.label_smoothing < 1:
            raise ValueError("validation and label_smoothing must be in [0, 1)")
        if self.extra_weight <= 0:
            raise ValueError(f"extra_weight must be > 0, got {self.extra_weight:g}")
        if self.mixup < 0 or self.spec_masks < 0 or self.warmup_epochs < 0:
            raise ValueError("mixup, spec_masks and warmup_epochs must be >= 0")
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise ValueError("cpus_per_trial must be > 0 and gpus_per_trial >= 0")
        if self.workers_per_trial < 1 or self.checkpoint_s < 0:
            raise ValueError("workers_per_trial must be >= 1 and checkpoint_s >= 0")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.gpus_per_trial > 1:
            raise ValueError(
                f"--gpus-per-trial {self.gpus_per_trial:g}: a worker trains on one GPU, so it "
                "would hold GPUs it never uses; for N GPUs use --workers-per-trial N "
                "--gpus-per-trial 1"
            )
        if self.workers_per_trial > 1 and 0 < self.gpus_per_trial < 1:
            raise ValueError(
                f"--workers-per-trial {self.workers_per_trial} with --gpus-per-trial "
                f"{self.gpus_per_trial:g}: Ray would pack the ranks onto one GPU and NCCL "
                "refuses two ranks on one device; data-parallel workers need "
                "--gpus-per-trial 1 (fractions pack single-worker trials)"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def result_settings(self) -> dict[str, Any]:
        """The settings that change a trial's figures, including the arithmetic it ran in:
        the precision asked for on a GPU, fp32 on the CPU (each trial's record says which it
        used)."""
        settings = {
            k: v
            for k, v in self.to_dict().items()
            if k not in RESOURCE_KEYS and not (k in LATER_KEYS and v == LATER_KEYS[k])
        }
        settings["precision"] = self.precision if self.gpus_per_trial > 0 else "fp32"
        return settings

    @property
    def validating(self) -> bool:
        """Trials report on data carved from the training side; the test split is unread."""
        return bool(self.validation) or self.validation_speaker or self.validation_part

    def inputs(self) -> InputSettings:
        return InputSettings(self.normalize, self.deltas)

    def recipe(self) -> Recipe:
        return Recipe(self.label_smoothing, self.mixup, self.spec_masks)

    def for_model(self, recipe: dict[str, Any]) -> TrainConfig:
        """This configuration with a model's registered recipe (its overrides) applied."""
        unknown = set(recipe) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"recipe names unknown train config keys: {sorted(unknown)}")
        return dataclasses.replace(self, **recipe)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """From a saved dict; keys missing there (added since) take their defaults, retired
        ones are dropped, and ``bf16`` (before ``precision``) reads as auto or fp32."""
        data = {k: v for k, v in data.items() if k not in RETIRED_KEYS}
        if "bf16" in data:
            data["precision"] = "auto" if data.pop("bf16") else "fp32"
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown train config keys: {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class TrialSpec:
    """One cell of the grid: a model on one split of one seed."""

    model: str  # canonical registry name, e.g. "att-Res"
    slug: str  # file-safe model name, e.g. "att-res"
    seed: int
    fold: int
    split: str  # split name, e.g. "paper-s0-f0"
    features: str  # FEATURES location (absolute path or URI)
    fingerprint: str  # the features' content fingerprint the rows below refer to
    runs: str  # RUNS location: trial records, splits, final models, results table
    storage: str  # location of checkpoints and Tune's state (default: RUNS)
    train: TrainConfig
    train_rows: tuple[int, ...] = field(repr=False)  # rows of the features, sorted by id
    test_rows: tuple[int, ...] = field(repr=False)  # rows of the test features, if any
    n_folds: int = 1  # folds of the protocol on these features, run or not
    # cross-corpus: the FEATURES tested on (test_rows are its rows), its fingerprint, and
    # the classes both share, which the labels of both are mapped onto
    test_features: str = ""
    test_fingerprint: str = ""
    classes: tuple[str, ...] = ()
    extra_fingerprints: tuple[str, ...] = ()  # of ``train.extra_train``'s FEATURES, in order

    @property
    def name(self) -> str:
        """Deterministic trial name: a re-run finds its results by it."""
        return f"{self.slug}-{self.split}"

    @property
    def checkpoint_name(self) -> str:
        """The trial's name and a hash of the run it belongs to (RUNS, the features'
        fingerprint, the settings that change results): another run sharing the storage
        neither resumes from this trial's checkpoints nor deletes them."""
        owner: dict[str, Any] = {"runs": self.runs, "features": self.fingerprint}
        if self.test_features:
            owner["test_features"] = self.test_fingerprint
        if self.extra_fingerprints:
            owner["extra_train"] = list(self.extra_fingerprints)
        owner["settings"] = self.train.result_settings()
        digest = hashlib.sha1(json.dumps(owner, sort_keys=True).encode()).hexdigest()
        return f"{self.name}-{digest[:12]}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialSpec:
        data = dict(data)
        data["train"] = TrainConfig.from_dict(data["train"])
        data["train_rows"], data["test_rows"] = tuple(data["train_rows"]), tuple(data["test_rows"])
        data["classes"] = tuple(data.get("classes", ()))
        data["extra_fingerprints"] = tuple(data.get("extra_fingerprints", ()))
        return cls(**data)


def runs_on_ray_train(spec: TrialSpec) -> bool:
    """The network trains data-parallel on Ray Train workers."""
    return model_kind(spec.model) == "torch" and spec.train.workers_per_trial > 1


def is_network(model: str) -> bool:
    """A torch model of spectrograms (not a network of functionals)."""
    return model_kind(model) == "torch" and not model_info(model).features


def streams(spec: TrialSpec) -> bool:
    """``--stream`` applies to the trial: a network of spectrograms (functionals are a few
    hundred numbers a clip, read whole)."""
    return spec.train.stream and is_network(spec.model)
