"""A fetchmail release tarball (URL or path), checked against its sha256 and extracted."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from filelock import FileLock

from harness import paths
from harness.archives import extract
from harness.errors import ConfigError, SourceError
from harness.source.mirror import source_dir
from harness.source.versions import Version

_TARBALL_NAME = re.compile(r"fetchmail-(\d+\.\d+\.\d+(?:\.?(?:alpha|beta|rc)\d+)?)\.tar")


class TarballSource:
    """A fetchmail release tarball (URL or path), checked against its sha256 and extracted."""

    def __init__(self, location: str, sha256: str, cache: Path | None = None) -> None:
        self.location = location
        self.sha256 = sha256.lower().strip()
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ConfigError(f"not a sha256 checksum: {sha256!r}")
        self.cache = cache or paths.cache_dir()
        m = _TARBALL_NAME.search(Path(location).name)
        if not m:
            raise ConfigError(f"cannot tell the fetchmail version from {location!r}")
        self.version = Version.parse(m[1])

    def resolve(self, name: str) -> Version:
        if Version.parse(name) != self.version:
            raise ConfigError(f"{self.location} holds fetchmail {self.version}, not {name}")
        return self.version

    def commit(self, version: Version) -> str:
        return f"sha256:{self.sha256}"

    def _fetch(self, dest: Path) -> None:
        if re.match(r"^[a-z][a-z0-9+.-]*://", self.location) and not self.location.startswith(
            "file://"
        ):
            try:
                with urllib.request.urlopen(self.location, timeout=60) as resp, dest.open(
                    "wb"
                ) as out:
                    shutil.copyfileobj(resp, out)
            except OSError as exc:
                raise SourceError(f"cannot download {self.location}: {exc}") from exc
        else:
            local = Path(self.location.removeprefix("file://"))
            if not local.is_file():
                raise SourceError(f"no such tarball: {local}")
            shutil.copyfile(local, dest)

    def worktree(self, version: Version | None = None) -> Path:
        """The extracted tree (made once, atomically); SourceError on a checksum mismatch."""
        path = source_dir(self.cache) / "tarballs" / f"{self.version}-{self.sha256[:12]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if path.is_dir():
                return path
            tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=path.parent))
            try:
                archive = tmp / "archive"
                self._fetch(archive)
                digest = hashlib.sha256(archive.read_bytes()).hexdigest()
                if digest != self.sha256:
                    raise SourceError(
                        f"checksum mismatch for {self.location}: expected {self.sha256}, "
                        f"got {digest}; nothing was extracted"
                    )
                with tarfile.open(archive) as tar:
                    extract(tar, tmp / "x")
                entries = list((tmp / "x").iterdir())
                top = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp / "x"
                os.replace(top, path)
            except tarfile.TarError as exc:
                raise SourceError(f"{self.location} is not a readable tarball: {exc}") from exc
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return path
