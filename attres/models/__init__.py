"""The model zoo; importing this package registers every model in ``attres.registry``."""

from attres.models import attres, baselines, svm

__all__ = ["attres", "baselines", "svm"]
