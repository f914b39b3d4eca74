"""Where an unfinished trial keeps its training state: ``STORAGE/checkpoints/<trial>/``.

A Tune retry and a re-run of the grid after a kill both resume from it; the trial's
record supersedes it, and it is deleted once the record is written.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from featurize.location import Location


class FileCheckpoints:
    """One trial's training state as a single file (local folder or URI), written whole."""

    def __init__(self, storage: str, trial: str) -> None:
        self.folder = Location(storage).child("checkpoints", trial)
        self.location = self.folder.child("state.pt")
        self.record = self.folder.child("record.json")  # a data-parallel run's result

    def load(self) -> dict[str, Any] | None:
        """The last saved state, or None. One that cannot be read (a disk that failed
        mid-write, say) is set aside as ``state.pt.corrupt`` with a warning, and the trial
        starts over instead of failing on every retry."""
        import torch

        try:
            data = self.location.read()
        except FileNotFoundError:
            return None
        try:
            # CPU first: RNG states must stay CPU tensors; TrainingState.restore moves the rest.
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for a damaged file
            fs, path = self.location.filesystem()
            fs.move(path, f"{path}.corrupt")
            warnings.warn(
                f"{self.location} could not be read ({type(err).__name__}: {err}); moved to "
                f"{self.location}.corrupt, the trial starts over",
                stacklevel=2,
            )
            return None

    def save(self, state: dict[str, Any]) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        self.location.write(buffer.getvalue())

    def clear(self) -> None:
        fs, path = self.folder.filesystem()
        try:
            fs.delete_dir(path)
        except FileNotFoundError:
            pass


class ReadOnlyCheckpoints:
    """Checkpoints that load and never save: data-parallel ranks other than 0."""

    def __init__(self, checkpoints: FileCheckpoints) -> None:
        self.checkpoints = checkpoints

    def load(self) -> dict[str, Any] | None:
        return self.checkpoints.load()

    def save(self, state: dict[str, Any]) -> None:
        pass
