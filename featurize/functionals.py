"""openSMILE functionals: the field's standard acoustic parameter sets, one vector per clip.

eGeMAPS v02 (the Geneva minimalistic set, 88 functionals) and ComParE 2016 (6,373), computed
by the ``opensmile`` package, which runs audEERING's SMILExtract on the signal in process
with the configurations it ships (nothing is downloaded).

Each set is stored beside the spectrograms as a family of Parquet shards of its own
(``featurize.store``), so a featurized corpus gains a set without recomputing its images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# name on the command line -> (opensmile FeatureSet member, the field's name, length)
SETS = {
    "egemaps": ("eGeMAPSv02", "eGeMAPS", 88),
    "compare": ("ComParE_2016", "ComParE", 6373),
}


class FunctionalsError(ValueError):
    """openSMILE could not describe the clip; the message is a one-line reason."""


def check_sets(names: tuple[str, ...]) -> tuple[str, ...]:
    """The sets asked for, once each in the order of ``SETS``; ValueError naming an unknown one."""
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise ValueError(f"unknown functionals {unknown}; known: {', '.join(SETS)}")
    return tuple(n for n in SETS if n in names)


def opensmile_version() -> str:
    import opensmile  # type: ignore[import-untyped]

    return str(opensmile.__version__)


@dataclass
class Extractor:
    """One openSMILE instance per set (built once: each reads its configuration files)."""

    sets: tuple[str, ...]

    def __post_init__(self) -> None:
        import opensmile  # type: ignore[import-untyped]

        self._smiles: dict[str, Any] = {
            name: opensmile.Smile(
                feature_set=getattr(opensmile.FeatureSet, SETS[name][0]),
                feature_level=opensmile.FeatureLevel.Functionals,
            )
            for name in self.sets
        }

    def names(self, name: str) -> list[str]:
        return list(self._smiles[name].feature_names)

    def __call__(
        self, signal: np.ndarray, rate: int, only: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """A mono float signal -> {set: (D,) float32} for every set (or those in ``only``);
        FunctionalsError if a value is missing (openSMILE fills a clip too short for its
        windows with NaN)."""
        import warnings

        out = {}
        for name, smile in self._smiles.items():
            if only is not None and name not in only:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Segment too short": caught as NaN below
                values = smile.process_signal(signal, rate).to_numpy(np.float32).reshape(-1)
            missing = int(np.count_nonzero(~np.isfinite(values)))
            if missing:
                raise FunctionalsError(
                    f"openSMILE {SETS[name][1]}: {missing} of {len(values)} functionals "
                    f"undefined (clip of {len(signal) / rate:.2f} s too short?)"
                )
            out[name] = values
        return out
