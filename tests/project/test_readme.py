"""The README's two commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_command(label: str) -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- {label} -->\s*```sh\n(.+?)\n```", text, re.S)
    assert m, f"README has no {label} block"
    return m.group(1).strip()


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == _readme_command("test-command")


def test_main_command_names_a_real_cell() -> None:
    from harness.cell.model import Cell
    from harness.series.table import series_for

    main_cmd = _readme_command("main-command")
    cell_id = main_cmd.split()[-1]
    cell = Cell.parse(cell_id)
    assert cell.identifier == cell_id
    resolved = series_for(cell.version)
    assert resolved is not None and resolved[0].name == cell.series


def test_readme_series_table_matches_patches_table() -> None:
    from harness.series.table import markdown_table

    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- series-table -->", 1)[1].strip().splitlines()
    rows = []
    for line in block[2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    assert "\n".join(rows) == markdown_table(), "README table is stale: " \
        "regenerate with `fetchmail-harness versions --table`"


def test_install_commands_name_the_package_build_writes() -> None:
    """The README's .deb file name is the one `build --deb` makes for 6.4.33 on bookworm."""
    from harness.build.package import PACKAGE, deb_version
    from harness.cli import build_parser
    from harness.series.table import series_for
    from harness.source.versions import Version

    lines = _readme_command("install-commands").splitlines()
    build = next(line for line in lines if " build " in line).split()
    args = build_parser().parse_args(build[build.index("build"):])
    assert args.deb and args.version == "6.4.33"
    found = series_for(Version.parse(args.version))
    assert found is not None
    version = deb_version({"version": "6.4.33", "series": found[0].name,
                           "distro": "bookworm"}, "6.4.33")
    assert lines[-1] == f"sudo apt install ./{args.dist}/{PACKAGE}_{version}_amd64.deb"
