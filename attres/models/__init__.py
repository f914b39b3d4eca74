"""The model zoo and its registry (timm's layout: ``_registry`` beside the model files).

Importing this package registers every built-in model; everything else asks for models by
name through the functions below, never by importing a model file.
"""

from attres.models import (  # noqa: F401  (each registers its models)
    attres,
    baselines,
    encoders,
    functionals,
    svm,
)
from attres.models._registry import (
    FUSION,
    PAPER_MODELS,
    ModelInfo,
    create_model,
    encoder_heads,
    list_models,
    model_info,
    model_kind,
    register_model,
    resolve_name,
    slug_of,
)
from attres.models.functionals import class_probabilities

__all__ = [
    "class_probabilities",
    "FUSION",
    "PAPER_MODELS",
    "ModelInfo",
    "create_model",
    "encoder_heads",
    "list_models",
    "model_info",
    "model_kind",
    "register_model",
    "resolve_name",
    "slug_of",
]
