"""The model registry: one table from the paper's names (and slugs) to builders.

Importing ``attres.models`` fills it (``_catalog`` registers every built-in model, each
builder named by place, "module:attribute", and imported when a model is built); callers
use the names that package re-exports. This module imports no model, so there is no cycle,
and reading the registry imports neither torch nor scikit-learn.

In the style of torchvision's ``models/_api.py`` and timm's ``models/_registry.py``:
``register_model("att-Res", builder="attres.models.attres:AttRes", options={...})`` (or, for
a builder at hand, the decorator ``@register_model("my-net")``) registers it, and
training, tuning and evaluation code call ``create_model(name, num_classes)`` and
branch on ``model_kind(name)``, never on names. Every builder takes
``(num_classes, in_chans=1, **kwargs)``. Names resolve case-insensitively, from the
paper name ("att-Res0+att"), its slug ("att-res0-att") or an extra alias, with "_"
read as "-" ("lstm_cnn").

A head over a speech encoder's layers is registered once as a family, by the suffix of its
name (``@register_encoder_head("LR")``): ``<set>-LR`` then names it over the encoder set
``<set>`` of FEATURES (``featurize --encoder <set>=MODEL``), e.g. "wavlm-base-plus-LR".

>>> from attres.models import model_kind, resolve_name
>>> resolve_name("LSTM-CNN"), model_kind("svm")
('LSTM+CNN', 'sklearn')
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, TypeVar

Kind = Literal["torch", "sklearn"]
Builder = TypeVar("Builder", bound=Callable[..., Any])

# The paper's models in the order of its result tables; later additions follow these.
PAPER_MODELS = (
    "att-Res0",
    "att-Res0+att",
    "att-Res1",
    "att-Res2",
    "att-Res",
    "att-Res3",
    "CNN",
    "LSTM+CNN",
    "SVM",
    "AlexNet",
    "ResNet-18",
)


@dataclass(frozen=True)
class ModelInfo:
    name: str  # canonical (paper) name, e.g. "att-Res0+att"
    slug: str  # file- and URL-safe name, e.g. "att-res0-att"
    kind: Kind  # "torch": an nn.Module returning logits; "sklearn": fit / predict
    # the builder, or where it is ("module:attribute"), imported when a model is built: the
    # registry itself imports no model, and so neither torch nor scikit-learn
    builder: Callable[..., Any] | str
    recipe: dict[str, Any] = field(default_factory=dict)  # training overrides, e.g. att-Res+
    # what it reads: () the spectrogram, else openSMILE functionals sets ("egemaps", ...),
    # each a (D, 1, 1) input, several side by side as (sum of D, 1, 1)
    features: tuple[str, ...] = ()
    # a head over a speech encoder: the encoder set it reads, (layers + 1, dim, 1) an input
    encoder: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of every build

    @property
    def build(self) -> Callable[..., Any]:
        """The builder, imported if the registry named it by place, with its options."""
        builder = self.builder
        if isinstance(builder, str):
            module, name = builder.split(":")
            builder = getattr(importlib.import_module(module), name)
        return partial(builder, **self.options) if self.options else builder

    @property
    def reads(self) -> str:
        """What the model reads, in words: "spectrogram", "egemaps+compare functionals" or
        "wavlm encoder layers"."""
        if self.encoder:
            return f"{self.encoder} encoder layers"
        return f"{'+'.join(self.features)} functionals" if self.features else "spectrogram"


_MODELS: dict[str, ModelInfo] = {}  # canonical name -> entry
_KEYS: dict[str, str] = {}  # _key(name, slug or alias) -> canonical name
_HEADS: dict[str, ModelInfo] = {}  # _key(suffix) -> an encoder head, its encoder ""
_MEMBERS: dict[str, ModelInfo] = {}  # canonical "<set>-<suffix>" -> that head over <set>
ENCODER_SET = re.compile(r"^[a-z0-9][a-z0-9.-]*$")  # featurize.encoders' set names


def _key(name: str) -> str:
    """Lookup key: case and "_" versus "-" do not matter."""
    return name.strip().lower().replace("_", "-")


def slugify(name: str) -> str:
    """Lower case, runs of other characters replaced by "-": "att-Res0+att" -> "att-res0-att"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def register_model(
    name: str,
    *,
    kind: Kind = "torch",
    slug: str | None = None,
    aliases: tuple[str, ...] = (),
    recipe: dict[str, Any] | None = None,
    features: tuple[str, ...] = (),
    builder: str | None = None,
    options: dict[str, Any] | None = None,
) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder(num_classes, in_chans=1, **kwargs)`` under ``name``;
    given ``builder="module:attribute"``, registers that builder by place, imported only
    when a model is built (``attres.models._catalog``), with ``options`` as keywords.

    ``recipe``: training settings this entry always uses (names of
    ``workflows.grid.config.TrainConfig`` fields), so an improved recipe is a model of its own.
    ``features``: the openSMILE functionals sets it reads instead of the spectrogram.

    A name, slug or alias that already resolves to a model is refused (ValueError).
    """
    if kind not in ("torch", "sklearn"):
        raise ValueError(f"kind must be 'torch' or 'sklearn', got {kind!r}")
    slug = slug or slugify(name)
    keys = list(dict.fromkeys(_key(k) for k in (name, slug, *aliases)))

    def decorator(builder: Builder) -> Builder:
        taken = [k for k in keys if k in _KEYS]
        if taken:
            raise ValueError(f"cannot register model {name!r}: {taken} already registered")
        _MODELS[name] = ModelInfo(
            name, slug, kind, builder, dict(recipe or {}), features, options=dict(options or {})
        )
        _KEYS.update(dict.fromkeys(keys, name))
        return builder

    if builder is not None:
        decorator(builder)  # type: ignore[arg-type]
    return decorator


def register_encoder_head(
    suffix: str,
    *,
    kind: Kind = "sklearn",
    recipe: dict[str, Any] | None = None,
    builder: str | None = None,
) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder(num_classes, in_chans=layers + 1, **kwargs)`` as the
    head named ``<set>-<suffix>`` over any encoder set (or ``builder="module:attribute"``,
    by place); a suffix taken is refused."""

    def decorator(builder: Builder) -> Builder:
        if _key(suffix) in _HEADS:
            raise ValueError(f"cannot register encoder head {suffix!r}: already registered")
        _HEADS[_key(suffix)] = ModelInfo(suffix, slugify(suffix), kind, builder, dict(recipe or {}))
        return builder

    if builder is not None:
        decorator(builder)  # type: ignore[arg-type]
    return decorator


def encoder_heads() -> list[str]:
    """The suffixes of the heads over encoder sets ("LR", ...)."""
    return [head.name for head in _HEADS.values()]


def _encoder_member(name: str) -> str | None:
    """The canonical "<set>-<suffix>" of a head over an encoder set, or None."""
    key = _key(name)
    for suffix, head in _HEADS.items():
        encoder = key[: -len(suffix) - 1]
        if key.endswith(f"-{suffix}") and ENCODER_SET.match(encoder):
            canonical = f"{encoder}-{head.name}"
            if canonical not in _MEMBERS:
                _MEMBERS[canonical] = ModelInfo(
                    canonical, slugify(canonical), head.kind, head.builder, head.recipe,
                    encoder=encoder,
                )  # fmt: skip
            return canonical
    return None


def list_models() -> list[str]:
    """Canonical names: the paper's in paper order, then later registrations."""
    paper = [name for name in PAPER_MODELS if name in _MODELS]
    return paper + [name for name in _MODELS if name not in PAPER_MODELS]


def resolve_name(name: str) -> str:
    """The canonical name for a paper name, slug or alias (any case); ValueError if unknown."""
    canonical = _KEYS.get(_key(name)) or _encoder_member(name)
    if canonical is None:
        heads = "/".join(f"-{suffix}" for suffix in encoder_heads())
        raise ValueError(
            f"unknown model {name!r}; known models: {', '.join(list_models())}, and "
            f"<encoder set>{heads} over an encoder set of FEATURES"
        )
    return canonical


FUSION = " & "  # joins the names of two fused models: "att-Res+ & eGeMAPS-LR-ST"


def slug_of(name: str) -> str:
    """A model's slug; for a fusion of two models, their slugs joined by "-and-"
    ("att-res-plus-and-egemaps-lr-st"); for any other name outside the registry, its
    slugify."""
    if FUSION in name:
        return "-and-".join(slug_of(part) for part in name.split(FUSION))
    canonical = _KEYS.get(_key(name)) or _encoder_member(name)
    return model_info(canonical).slug if canonical else slugify(name)


def model_info(name: str) -> ModelInfo:
    canonical = resolve_name(name)
    return _MODELS.get(canonical) or _MEMBERS[canonical]


def model_kind(name: str) -> Kind:
    """The kind, "torch" or "sklearn": callers branch on it, never on model names."""
    return model_info(name).kind


def create_model(name: str, num_classes: int, in_chans: int = 1, **kwargs: Any) -> Any:
    """Build a model: an ``nn.Module`` (kind "torch") or an object with fit / predict."""
    return model_info(name).build(num_classes=num_classes, in_chans=in_chans, **kwargs)
