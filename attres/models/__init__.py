"""The model zoo and its registry (timm's layout: ``_registry`` beside the model files).

Importing this package registers every built-in model (``_catalog``: by name, each builder
by place, so that importing it imports no model, torch or scikit-learn); everything else
asks for models by name through the functions below, never by importing a model file.
"""

from attres.models import _catalog  # noqa: F401  (registers the built-in models)
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

__all__ = [
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
