"""The matrix runner's real backend: fetchmail cells build with harness.build and run in the
build image (a DISTRO+deb cell: in the base image with the build's .deb installed by apt);
relay cells build the XOAUTH2 plugin (harness.relay.plugin) and run postfix in the relay
image (harness.relay.run)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import docker

from harness import paths
from harness.build.builder import BuildPlan, BuildResult, build, default_series, plan_build
from harness.build.distros import Distro
from harness.build.engine import ensure_engine
from harness.build.images import ensure_build_image
from harness.cell.boxes import BoxPool
from harness.cell.kinds import MatrixCell
from harness.cell.model import Cell
from harness.cell.relay import RelayCell
from harness.cell.result import CellResult
from harness.cell.run import NETWORK, run_cell
from harness.errors import BuildError, ConfigError
from harness.relay.plugin import PluginBuild, PluginSource, build_plugin
from harness.relay.plugin import build_key as plugin_key
from harness.series.names import NATIVE_SERIES
from harness.source.mirror import FetchmailSource

Built = BuildResult | PluginBuild


class DockerBackend:
    """A harness.matrix.runner.Backend: harness.build.builder builds, harness.cell.run runs
    (relay cells: harness.relay.plugin builds, harness.relay.run runs).

    The plan of each build (its resolved inputs and key) is made once, by `build_key`, and
    reused by `build`.
    """

    def __init__(self, upstream: str | None = None, patches_dir: Path | None = None,
                 plugin_upstream: str | None = None) -> None:
        self.source = FetchmailSource(upstream)
        self.plugin_source = PluginSource(plugin_upstream)
        self.patches_dir = patches_dir
        self._client: docker.DockerClient | None = None
        self._lock = threading.RLock()
        self._images: dict[Distro, str] = {}
        self._server_image: str | None = None
        self._plans: dict[str, BuildPlan] = {}
        self._boxes: BoxPool | None = None
        self._in_session = False

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """One matrix run: its fetchmail cells borrow their containers from one pool
        (harness.cell.boxes), made at the first cell that runs (none: no engine needed), all
        removed when the run ends."""
        with self._lock:
            self._in_session = True
        try:
            yield
        finally:
            with self._lock:
                pool, self._boxes, self._in_session = self._boxes, None, False
            if pool is not None:
                pool.close()

    def boxes(self) -> BoxPool | None:
        """The session's container pool (None outside a session: each cell its own)."""
        with self._lock:
            if self._in_session and self._boxes is None:
                self._boxes = BoxPool(self.client, network_mode=NETWORK)
            return self._boxes

    @property
    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                self._client = ensure_engine()
            return self._client

    def check_cell(self, cell: MatrixCell) -> None:
        """ConfigError unless a fetchmail cell's version exists and its series is the table's
        choice (a relay cell was checked by its parse)."""
        if isinstance(cell, RelayCell):
            return
        version = self.source.resolve(str(cell.version))
        expected = NATIVE_SERIES if version.branch else default_series(version, self.patches_dir)
        if expected is None:
            raise ConfigError(f"fetchmail {cell.version} has no patch series (see "
                              "`fetchmail-harness versions`)")
        if cell.series != expected:
            fixed = cell.identifier.replace(cell.series, expected, 1)
            raise ConfigError(f"fetchmail {cell.version} uses series {expected!r}, not "
                              f"{cell.series!r}: try {fixed}")

    def plan(self, cell: Cell) -> BuildPlan:
        """The plan of the cell's build, made once per build group."""
        with self._lock:
            group = cell.build_group
            if group not in self._plans:
                self._plans[group] = plan_build(cell.build, source=self.source,
                                                patches_dir=self.patches_dir)
            return self._plans[group]

    def build_key(self, cell: MatrixCell) -> str:
        """The build's key (source commit, series content or plugin commit, image recipe),
        without building."""
        if isinstance(cell, RelayCell):
            return plugin_key(self.plugin_source.commit(), cell.distro)
        return self.plan(cell).key

    def build(self, cell: MatrixCell) -> Built:
        if isinstance(cell, RelayCell):
            return build_plugin(cell.distro, source=self.plugin_source, client=self.client)
        return build(self.plan(cell), client=self.client)

    def image(self, distro: Distro) -> str:
        with self._lock:
            if distro not in self._images:
                image, _ = ensure_build_image(self.client, distro)
                self._images[distro] = image.tag
            return self._images[distro]

    def server_image(self) -> str:
        """Debian's Dovecot 2.3 for the `dovecot` server cells."""
        from harness.build.images import ensure_dovecot_image

        with self._lock:
            if self._server_image is None:
                image, _ = ensure_dovecot_image(self.client)
                self._server_image = image.tag
            return self._server_image

    def installed(self, cell: Cell, built: BuildResult) -> str:
        """The image with the build's .deb installed by apt (made once per package)."""
        from harness.build.installed import installed_image
        from harness.build.package import package

        made = package(Path(built.dist_dir), self.image(cell.distro), self.client)
        return installed_image(self.client, cell.distro, [made.deb])

    def run(self, cell: MatrixCell, built: Built, log_path: Path) -> CellResult:
        if isinstance(cell, RelayCell):
            from harness.relay.box import relay_box
            from harness.relay.run import run_relay_cell

            assert isinstance(built, PluginBuild)
            with relay_box(self.client, built, paths.cache_dir()) as box:
                return run_relay_cell(cell, box, log_path)
        assert isinstance(built, BuildResult)
        server = self.server_image() if cell.server == "dovecot" else None
        if not cell.packaged:
            return run_cell(cell, built.binary, self.image(cell.distro), self.client, log_path,
                            server_image=server, boxes=self.boxes())
        try:
            image = self.installed(cell, built)
        except (BuildError, ConfigError) as exc:  # the package, not the infrastructure
            return CellResult(cell, "fail", f"package: {exc}")
        return run_cell(cell, None, image, self.client, log_path, server_image=server,
                        boxes=self.boxes())
