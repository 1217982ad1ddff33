"""The matrix runner's real backend: fetchmail cells build fetchmail (harness.build) and run
in the build image (a DISTRO+deb cell: in the base image with the build's .deb installed by
apt); relay cells build the XOAUTH2 plugin (harness.relay.plugin) and run postfix in the
relay image (harness.relay.run)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from harness import paths
from harness.cell.model import Cell
from harness.cell.result import CellResult
from harness.cell.run import run_cell
from harness.errors import BuildError, ConfigError
from harness.matrix.kinds import MatrixCell
from harness.relay.cell import RelayCell


class DockerBackend:
    """A harness.matrix.runner.Backend for both kinds of cell."""

    def __init__(self, upstream: str | None = None, patches_dir: Path | None = None,
                 plugin_upstream: str | None = None) -> None:
        from harness.relay.plugin import PluginSource
        from harness.source.mirror import FetchmailSource

        self.source = FetchmailSource(upstream)
        self.plugin_source = PluginSource(plugin_upstream)
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

    def check_cell(self, cell: MatrixCell) -> None:
        """ConfigError unless a fetchmail cell's version exists and its series is the table's
        choice (a relay cell is checked by its parse)."""
        from harness.build.builder import default_series

        if isinstance(cell, RelayCell):
            return
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

    def build_key(self, cell: MatrixCell) -> str:
        """The build's key (source commit, series or plugin, image recipe), without building."""
        from harness.build.builder import build_key

        if isinstance(cell, RelayCell):
            from harness.relay.plugin import build_key as plugin_key

            return plugin_key(self.plugin_source.commit(), cell.distro)
        return build_key(self.spec(cell), source=self.source, patches_dir=self.patches_dir)

    def build(self, cell: MatrixCell) -> Any:
        from harness.build.builder import build

        if isinstance(cell, RelayCell):
            from harness.relay.plugin import build_plugin

            return build_plugin(cell.distro, source=self.plugin_source, client=self.client)
        return build(self.spec(cell), source=self.source, patches_dir=self.patches_dir,
                     client=self.client)

    def image(self, distro: str) -> str:
        from harness.build.images import ensure_build_image

        with self._lock:
            if distro not in self._images:
                image, _ = ensure_build_image(self.client, distro)
                self._images[distro] = image.tag
            return self._images[distro]

    def installed(self, cell: Cell, built: Any) -> str:
        """The image with the build's .deb installed by apt (made once per package)."""
        from harness.build.installed import installed_image
        from harness.build.package import package

        made = package(Path(built.dist_dir), self.image(cell.distro), self.client)
        return installed_image(self.client, cell.distro, [made.deb])

    def run(self, cell: MatrixCell, built: Any, log_path: Path) -> CellResult:
        if isinstance(cell, RelayCell):
            from harness.relay.box import relay_box
            from harness.relay.run import run_relay_cell

            with relay_box(self.client, built, paths.cache_dir()) as box:
                return run_relay_cell(cell.identifier, cell.scenario, box, log_path)
        if not cell.packaged:
            return run_cell(cell, Path(built.binary), self.image(cell.distro), self.client,
                            log_path)
        try:
            image = self.installed(cell, built)
        except (BuildError, ConfigError) as exc:  # the package, not the infrastructure
            return CellResult(cell.identifier, "fail", f"package: {exc}")
        return run_cell(cell, None, image, self.client, log_path)
