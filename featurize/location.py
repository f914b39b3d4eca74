"""Where data lives: a local path or a URI, one type for both, and the one way to write there.

A local path is made absolute when the ``Location`` is made, at the program's edge (CLI
arguments, public entry points). Code below never depends on the working directory, which
Ray changes for every trial, and never tests for ``"://"`` itself.

>>> Location("s3://bucket/runs/").child("trials")
's3://bucket/runs/trials'
>>> Location("/data/runs").is_uri
False
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import BinaryIO

import pyarrow.fs as pafs

TMP_PREFIX = "_tmp-"  # what a write leaves behind if killed midway; readers skip "_" names


class Location(str):
    """A local folder or file (absolute) or a URI such as ``s3://bucket/path``."""

    def __new__(cls, value: str | os.PathLike[str]) -> Location:
        if isinstance(value, Location):
            return value
        text = os.fspath(value)
        if "://" in text:
            text = text.rstrip("/")
        else:
            text = os.path.abspath(os.path.expanduser(text))
        return super().__new__(cls, text)

    @property
    def is_uri(self) -> bool:
        return "://" in self

    def child(self, *parts: str) -> Location:
        """This location joined with ``parts`` (always with "/", as URIs need)."""
        return Location("/".join([str(self).rstrip("/"), *parts]))

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """(pyarrow filesystem, path within it) for reading and writing here."""
        if self.is_uri:
            fs, path = pafs.FileSystem.from_uri(self)
            return fs, path.rstrip("/")
        return pafs.LocalFileSystem(), str(self)

    def write(self, data: bytes | str) -> None:
        """Write ``data`` (text as UTF-8) here atomically: under a temporary name in the same
        folder, then renamed, so a reader never sees half a file; the folder is made first.
        A local file is on disk (fsync) before it takes the name."""
        blob = data.encode() if isinstance(data, str) else data
        self._place(lambda f: f.write(blob), exclusive=False)

    def write_with(self, fill: Callable[[BinaryIO], object]) -> None:
        """``write`` what ``fill`` writes into the open file it is given: a large file goes
        straight to its temporary name, never held whole in memory first."""
        self._place(fill, exclusive=False)

    def create(self, data: bytes | str) -> bool:
        """``write``, only if nothing is here yet; False if something was. Atomic for a local
        file (two processes cannot both create it); on an object store checked, then written."""
        blob = data.encode() if isinstance(data, str) else data
        return self._place(lambda f: f.write(blob), exclusive=True)

    def _place(self, fill: Callable[[BinaryIO], object], exclusive: bool) -> bool:
        fs, path = self.filesystem()
        folder = path.rsplit("/", 1)[0]
        fs.create_dir(folder, recursive=True)
        tmp = f"{folder}/{TMP_PREFIX}{uuid.uuid4().hex}.part"  # no reader lists it as a file
        if self.is_uri:
            if exclusive and self.exists():
                return False
            with fs.open_output_stream(tmp) as f:
                fill(f)
            fs.move(tmp, path)
            return True
        try:
            with open(tmp, "wb") as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            os.remove(tmp)  # a failed fill leaves nothing behind
            raise
        if not exclusive:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # fails if the name exists, whoever made it
        except FileExistsError:
            return False
        finally:
            os.remove(tmp)
        return True

    def read(self) -> bytes:
        """The whole file; FileNotFoundError if there is none."""
        fs, path = self.filesystem()
        with fs.open_input_stream(path) as f:
            return f.read()

    def exists(self) -> bool:
        """Whether a file (not a folder) is here."""
        fs, path = self.filesystem()
        return fs.get_file_info(path).type == pafs.FileType.File
