"""The matrix runner's real backend: builds with harness.build, runs cells in the build image
(a DISTRO+deb cell: in the base image with the build's .deb installed by apt)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from harness.cell.model import Cell
from harness.cell.result import CellResult
from harness.cell.run import run_cell
from harness.errors import BuildError, ConfigError


class DockerBackend:
    """A harness.matrix.runner.Backend: harness.build.builder builds, harness.cell.run runs."""

    def __init__(self, upstream: str | None = None, patches_dir: Path | None = None) -> None:
        from harness.source.mirror import FetchmailSource

        self.source = FetchmailSource(upstream)
        self.patches_dir = patches_dir
        self._client: Any = None
        self._lock = threading.RLock()
        self._images: dict[str, str] = {}

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from harness.build.engine import ensure_engine

                self._client = ensure_engine()
            return self._client

    def check_cell(self, cell: Cell) -> None:
        """ConfigError unless the cell's version exists and its series is the table's choice."""
        from harness.build.builder import default_series

        version = self.source.resolve(cell.version)
        expected = "native" if version.branch else default_series(version, self.patches_dir)
        if expected is None:
            raise ConfigError(f"fetchmail {cell.version} has no patch series (see "
                              "`fetchmail-harness versions`)")
        if cell.series != expected:
            fixed = cell.identifier.replace(cell.series, expected, 1)
            raise ConfigError(f"fetchmail {cell.version} uses series {expected!r}, not "
                              f"{cell.series!r}: try {fixed}")

    def spec(self, cell: Cell) -> Any:
        from harness.build.builder import BuildSpec

        return BuildSpec(version=cell.version, distro=cell.distro,
                         series=None if cell.is_native else cell.series,
                         sanitize=cell.sanitizer is not None)

    def build_key(self, cell: Cell) -> str:
        """The build's key (source commit, series content, image recipe), without building."""
        from harness.build.builder import build_key

        return build_key(self.spec(cell), source=self.source, patches_dir=self.patches_dir)

    def build(self, cell: Cell) -> Any:
        from harness.build.builder import build

        return build(self.spec(cell), source=self.source, patches_dir=self.patches_dir,
                     client=self.client)

    def image(self, distro: str) -> str:
        from harness.build.images import ensure_build_image

        with self._lock:
            if distro not in self._images:
                image, _ = ensure_build_image(self.client, distro)
                self._images[distro] = image.tag
            return self._images[distro]

    def server_image(self) -> str:
        """Debian's Dovecot 2.3 for the `dovecot` server cells."""
        from harness.build.images import ensure_dovecot_image

        with self._lock:
            if "dovecot" not in self._images:
                image, _ = ensure_dovecot_image(self.client)
                self._images["dovecot"] = image.tag
            return self._images["dovecot"]

    def installed(self, cell: Cell, built: Any) -> str:
        """The image with the build's .deb installed by apt (made once per package)."""
        from harness.build.installed import installed_image
        from harness.build.package import package

        made = package(Path(built.dist_dir), self.image(cell.distro), self.client)
        return installed_image(self.client, cell.distro, [made.deb])

    def run(self, cell: Cell, built: Any, log_path: Path) -> CellResult:
        server = self.server_image() if cell.server == "dovecot" else None
        if not cell.packaged:
            return run_cell(cell, Path(built.binary), self.image(cell.distro), self.client,
                            log_path, server_image=server)
        try:
            image = self.installed(cell, built)
        except (BuildError, ConfigError) as exc:  # the package, not the infrastructure
            return CellResult(cell.identifier, "fail", f"package: {exc}")
        return run_cell(cell, None, image, self.client, log_path, server_image=server)
