"""Which speech encoder: a Hugging Face ``transformers`` model named by hub id or local folder.

``--encoder microsoft/wavlm-base-plus`` (or ``wavlm=microsoft/wavlm-base-plus``, or a folder
written by ``save_pretrained``) is resolved once, on the driver, before any work: to a local
folder holding its configuration, feature extractor and weights, and the revision they are
(the hub's commit hash, or a hash of the folder's files). A hub id comes from the user's
Hugging Face cache, downloaded into it first when the hub is reachable; offline
(``HF_HUB_OFFLINE=1``) or not found, it is refused with what to do. The model itself is
loaded and run by ``featurize.embedding``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

# model_type of the configuration -> what the encoder reads: the waveform, or Whisper's
# 30 s log-mel window. These five are the ones tested (tests/featurize/test_encoders.py).
ARCHITECTURES = {
    "wav2vec2": "waveform",
    "hubert": "waveform",
    "wavlm": "waveform",
    "data2vec-audio": "waveform",
    "whisper": "log-mel window",
}
CONFIG_FILES = ("config.json", "preprocessor_config.json")
WEIGHT_PATTERNS = ("model.safetensors", "model-*.safetensors", "model.safetensors.index.json")
BIN_PATTERNS = ("pytorch_model.bin", "pytorch_model-*.bin", "pytorch_model.bin.index.json")
SET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
NOT_NAMES = ("egemaps", "compare")  # the openSMILE sets: their models' names are taken


class EncoderError(ValueError):
    """The encoder cannot be used: not found, not a speech encoder, or a bad name."""


@dataclass(frozen=True)
class EncoderSource:
    """An encoder resolved to files on this machine."""

    name: str  # the set's name in FEATURES (``_encoders/<name>/``) and in model names
    model: str  # as the user named it: a hub id, or a local folder (absolute)
    path: str  # the local folder its files are read from
    revision: str  # the hub's commit hash, or "sha1:<hash of the folder's files>"
    model_type: str  # its configuration's model_type, one of ARCHITECTURES
    sample_rate: int  # the rate its feature extractor takes (16 kHz for all five)

    @property
    def reads(self) -> str:
        return ARCHITECTURES[self.model_type]


def parse_encoders(specs: list[str]) -> list[tuple[str, str]]:
    """``--encoder`` values (each possibly comma-separated, each ``MODEL`` or ``NAME=MODEL``)
    -> (name, model) pairs, once each; the name defaults to the model's last path part.

    >>> parse_encoders(["microsoft/wavlm-base-plus,w2v=facebook/wav2vec2-base"])
    [('wavlm-base-plus', 'microsoft/wavlm-base-plus'), ('w2v', 'facebook/wav2vec2-base')]
    """
    pairs: dict[str, str] = {}
    for spec in (s.strip() for text in specs for s in text.split(",")):
        if not spec:
            continue
        name, _, model = spec.rpartition("=")
        model = model.strip()
        name = name.strip() or default_name(model)
        check_name(name)
        if pairs.get(name, model) != model:
            raise EncoderError(f"two encoders named {name!r}: {pairs[name]} and {model}")
        pairs[name] = model
    return list(pairs.items())


def default_name(model: str) -> str:
    """A set name from a hub id or folder: its last part, lower case.

    >>> default_name("microsoft/WavLM-Base-Plus/"), default_name("/tmp/my model")
    ('wavlm-base-plus', 'my-model')
    """
    last = model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^a-z0-9.]+", "-", last.lower()).strip("-.")


def check_name(name: str) -> None:
    if not SET_NAME.match(name) or name in NOT_NAMES:
        raise EncoderError(
            f"encoder set name {name!r}: use lower-case letters, digits, '-' and '.' (not "
            f"{' or '.join(NOT_NAMES)}); give one as NAME=MODEL"
        )


def resolve_encoder(name: str, model: str, revision: str | None = None) -> EncoderSource:
    """``model`` (a folder, or a hub id at ``revision``, default its main branch) resolved
    to local files; EncoderError naming the model and how to provide it if they are not
    here and cannot be downloaded, or if it is no speech encoder this module knows."""
    check_name(name)
    if importlib.util.find_spec("transformers") is None:
        raise EncoderError(
            f"encoder {model}: speech encoders need Hugging Face transformers: "
            "pip install 'attres-flow[encoders]'"
        )
    folder = Path(model).expanduser()
    if folder.is_dir():
        path = folder.resolve()
        _require_files(path, model)
        source_revision = folder_revision(path)
        model = str(path)
    elif model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise EncoderError(f"encoder {model}: no such folder (and not a hub id, org/name)")
    else:
        path = _from_hub(model, revision)
        source_revision = path.name  # the cache keeps a revision under its commit hash
    model_type, rate = _read_configs(path, model)
    return EncoderSource(name, model, str(path), source_revision, model_type, rate)


def _from_hub(model: str, revision: str | None) -> Path:
    """The cached snapshot of a hub id, downloaded into the cache first when online."""
    from huggingface_hub import constants, snapshot_download

    offline = constants.is_offline_mode()
    how = (
        f"download it once where the hub is reachable (`hf download {model}`, into the "
        "Hugging Face cache, which HF_HOME / HF_HUB_CACHE place), or pass a folder written "
        "by save_pretrained"
    )
    try:
        path = Path(snapshot_download(
            model, revision=revision, allow_patterns=[*CONFIG_FILES, *WEIGHT_PATTERNS],
            local_files_only=offline,
        ))  # fmt: skip
        if not _weights(path):  # an older repository: PyTorch .bin weights only
            path = Path(snapshot_download(
                model, revision=path.name, allow_patterns=list(BIN_PATTERNS),
                local_files_only=offline,
            ))  # fmt: skip
    except Exception as err:  # hub errors, offline misses, a malformed id: all mean "not here"
        where = "HF_HUB_OFFLINE is set and it is not in the cache" if offline else str(err)
        first = where.strip().splitlines()[0] if where.strip() else type(err).__name__
        raise EncoderError(f"encoder {model}: not found ({first}); {how}") from None
    _require_files(path, model, how)
    return path


def _weights(path: Path) -> list[Path]:
    return [p for pattern in WEIGHT_PATTERNS + BIN_PATTERNS for p in path.glob(pattern)]


def _require_files(path: Path, model: str, how: str = "") -> None:
    missing = [name for name in CONFIG_FILES if not (path / name).is_file()]
    if not _weights(path):
        missing.append("weights (model.safetensors or pytorch_model.bin)")
    if missing:
        raise EncoderError(
            f"encoder {model}: {path} lacks {', '.join(missing)}"
            + (f"; {how}" if how else "; save the model with save_pretrained into it")
        )


def _read_configs(path: Path, model: str) -> tuple[str, int]:
    """(model_type, the feature extractor's sampling rate); EncoderError if it is no speech
    encoder read here."""
    import json

    model_type = json.loads((path / "config.json").read_text()).get("model_type", "")
    if model_type not in ARCHITECTURES:
        raise EncoderError(
            f"encoder {model} is a {model_type or 'model of no model_type'}; speech encoders "
            f"read here: {', '.join(ARCHITECTURES)}"
        )
    extractor = json.loads((path / "preprocessor_config.json").read_text())
    return str(model_type), int(extractor.get("sampling_rate", 16000))


def folder_revision(path: Path) -> str:
    """ "sha1:" and a hash of the folder's configuration and weight files (names and bytes),
    so another save of other weights into the same folder is another revision."""
    digest = hashlib.sha1()
    for file in sorted({*(path / n for n in CONFIG_FILES), *_weights(path)}):
        if file.is_file():
            digest.update(file.name.encode() + b"\0")
            with open(file, "rb") as f:
                while chunk := f.read(1 << 24):
                    digest.update(chunk)
    return f"sha1:{digest.hexdigest()[:16]}"


def resolve_trained(settings: dict[str, str]) -> tuple[EncoderSource, list[str]]:
    """The encoder an encoder set was made with (its ``_set.json``), to embed new
    recordings: the same model at the same revision where this machine has it; else the
    model as it is now (a folder's current files, a hub id's main branch), with a warning
    that its embeddings may differ from those the head learned."""
    name, model, revision = settings["encoder"], settings["model"], settings["revision"]
    hub_revision = None if revision.startswith("sha1:") else revision
    try:
        source = resolve_encoder(name, model, hub_revision)
    except EncoderError:
        if hub_revision is None:
            raise
        source = resolve_encoder(name, model)
    if source.revision == revision:
        return source, []
    return source, [
        f"encoder {name}: the model was trained on embeddings of {model} at revision "
        f"{revision}; this machine has revision {source.revision}, whose embeddings may differ"
    ]
