"""Where data lives: a local path or a URI, one type for both.

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

import pyarrow.fs as pafs


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
