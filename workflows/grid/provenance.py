"""Where a trial's results came from: the code, its settings, the features, the versions."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from importlib import metadata
from typing import Any

from workflows.grid.config import TrialSpec


@functools.cache
def git_commit() -> str:
    """The commit of the code running, or "unknown" outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=os.path.dirname(__file__),
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return commit or "unknown"


def code_version() -> str:
    """E.g. "attres-flow 0.1.0, git 1a2b3c4d5e6f": what a saved model was made by."""
    try:
        version = metadata.version("attres-flow")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"attres-flow {version}, git {git_commit()[:12]}"


# the packages whose arithmetic a record's figures rest on: with these versions another
# machine can tell a rounding difference of its own from one of a newer library
NUMERIC_PACKAGES = (
    "numpy", "scipy", "scikit-learn", "opensmile", "opencv-python-headless", "pyarrow",
)  # fmt: skip


def package_versions() -> dict[str, str]:
    """{distribution: version} of ``NUMERIC_PACKAGES`` as installed ("absent" if not)."""
    versions = {}
    for name in NUMERIC_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def provenance(spec: TrialSpec) -> dict[str, Any]:
    import json

    import ray
    import torch

    from attres.models import model_info
    from featurize.encoder_store import saved_settings
    from featurize.store import SET_FILE, functionals_location

    sets = model_info(spec.model).features
    encoder = model_info(spec.model).encoder
    return {
        # a head over an encoder set: the encoder, its revision, layers and pooling
        **({"encoder": saved_settings(spec.features, encoder)} if encoder else {}),
        # a model of functionals: each set's settings (openSMILE's version among them)
        **(
            {
                "functionals": {
                    name: json.loads(
                        functionals_location(spec.features, name).child(SET_FILE).read()
                    )
                    for name in sets
                }
            }
            if sets
            else {}
        ),  # fmt: skip
        "git_commit": git_commit(),
        "train_config": spec.train.to_dict(),
        "features": spec.features,
        "features_fingerprint": spec.fingerprint,
        "ray_version": ray.__version__,
        "torch_version": torch.__version__,
        "packages": package_versions(),
        "python": platform.python_version(),
        "host": platform.node(),
    }
