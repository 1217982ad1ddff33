"""The CI workflows: GitHub runs a copy of CI.yml; both CI files pass their schemas and agree.

The schemas are the GitHub workflow and GitLab CI JSON schemas that check-jsonschema ships
(`--builtin-schema vendor.github-workflows` / `vendor.gitlab-ci`); without check-jsonschema
(a test extra) the lint tests skip loudly.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.skips import skip_loudly

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / "CI.yml"
GITHUB_COPY = ROOT / ".github" / "workflows" / "ci.yml"
GITLAB = ROOT / ".gitlab-ci.yml"
SCHEMAS = {GITHUB: "vendor.github-workflows", GITHUB_COPY: "vendor.github-workflows",
           GITLAB: "vendor.gitlab-ci"}


def _check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        skip_loudly("check-jsonschema is not installed (pip install -e '.[test]'): "
                    "the CI workflows are not linted")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True, text=True, timeout=120,
    )


def _load(path: Path) -> Any:
    try:
        from ruamel.yaml import YAML
    except ImportError:
        skip_loudly("ruamel.yaml (a dependency of check-jsonschema) is not installed")
    return YAML(typ="safe").load(path.read_text())


def test_github_reads_a_byte_for_byte_copy_of_ci_yml() -> None:
    assert GITHUB_COPY.is_file(), f"missing {GITHUB_COPY.relative_to(ROOT)}"
    assert GITHUB_COPY.read_bytes() == GITHUB.read_bytes(), (
        "CI.yml and .github/workflows/ci.yml differ: GitHub runs the copy; "
        "after editing CI.yml run `cp CI.yml .github/workflows/ci.yml`"
    )


@pytest.mark.parametrize("path", list(SCHEMAS), ids=lambda p: str(p.relative_to(ROOT)))
def test_workflow_passes_its_schema(path: Path) -> None:
    proc = _check_jsonschema(SCHEMAS[path], path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("path", "good", "bad"),
    [(GITHUB, "    runs-on: ubuntu-latest\n", "    runs_on: ubuntu-latest\n"),
     (GITLAB, "  parallel: 20\n", "  parallel: twenty\n")],
    ids=["github", "gitlab"],
)
def test_the_schema_lint_rejects_a_broken_workflow(
    path: Path, good: str, bad: str, tmp_path: Path
) -> None:
    """The lint above could pass anything; here the same check fails a one-word breakage."""
    text = path.read_text()
    assert good in text
    broken = tmp_path / path.name.lstrip(".")
    broken.write_text(text.replace(good, bad, 1))
    proc = _check_jsonschema(SCHEMAS[path], broken)
    assert proc.returncode != 0, proc.stdout


# -- what the steps run -------------------------------------------------------------------------


def _scripts(path: Path) -> dict[str, list[str]]:
    """job name -> its shell scripts (GitHub `run:` steps, GitLab `script:` lines)."""
    data = _load(path)
    out: dict[str, list[str]] = {}
    if path == GITHUB:
        for name, job in data["jobs"].items():
            out[name] = [step["run"] for step in job.get("steps", []) if "run" in step]
    else:
        for name, job in data.items():
            if isinstance(job, dict) and "script" in job:
                out[name] = [line for line in job["script"] if isinstance(line, str)]
    return out


_INVOCATION = re.compile(r"(?:fetchmail-harness|-m harness)\s+([a-z][a-z-]*)((?:\\\n|[^\n|;&>])*)")


def _invocations(path: Path) -> list[tuple[str, str, list[str]]]:
    """(job, subcommand, its --options) for every harness command the workflow runs."""
    found = []
    for job, scripts in _scripts(path).items():
        for script in scripts:
            for m in _INVOCATION.finditer(script):
                words = shlex.split(m[2].replace("\\\n", " "), posix=True)
                found.append((job, m[1], [w.split("=")[0] for w in words if w.startswith("--")]))
    return found


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_workflow_runs_only_harness_options_that_exist(path: Path) -> None:
    from harness.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    seen = _invocations(path)
    assert seen, "the workflow runs no fetchmail-harness command"
    for job, command, options in seen:
        assert command in commands, f"{job}: no `fetchmail-harness {command}`"
        known = {o for a in commands[command]._actions for o in a.option_strings}
        unknown = [o for o in options if o not in known]
        assert not unknown, f"{job}: `fetchmail-harness {command}` has no {unknown}"


def test_github_runs_root_steps_under_sudo() -> None:
    """setup (apt-get, debootstrap), pytest and the cells need root; the runner user is not."""
    checked = 0
    for job, scripts in _scripts(GITHUB).items():
        for line in (ln for script in scripts for ln in script.splitlines()):
            if re.search(r"harness (setup|matrix)\b|-m pytest -m 'not slow'", line) and (
                    "--list" not in line):
                assert line.lstrip().startswith('$SUDO "$PY" -m '), f"{job}: {line!r}"
                checked += 1
    assert checked >= 3


def test_github_root_steps_keep_what_the_harness_reads_from_the_environment() -> None:
    """sudo drops the environment: a variable the harness reads (the cache, both upstreams)
    that the workflow sets must pass --preserve-env, or root's harness silently uses another
    cache or upstream."""
    from harness.relay.plugin import UPSTREAM_ENV as PLUGIN_ENV
    from harness.source.mirror import UPSTREAM_ENV

    data = _load(GITHUB)
    preserved = set(re.search(r"--preserve-env=(\S+)", data["env"]["SUDO"])[1].split(","))
    read = {"FETCHMAIL_HARNESS_CACHE", UPSTREAM_ENV, PLUGIN_ENV}
    set_by_workflow = set(data["env"]) | {
        name for job in data["jobs"].values() for step in job.get("steps", [])
        if "$SUDO" in step.get("run", "") for name in step.get("env", {})}
    assert read & set_by_workflow == read, "the workflow no longer sets them: update this test"
    assert read <= preserved, f"SUDO drops {sorted(read - preserved)}"


def test_github_matrix_fields_are_the_ones_matrix_list_writes() -> None:
    from harness.cell.model import Cell
    from harness.commands.matrix import ci_matrix

    workflow = GITHUB.read_text()
    used = set(re.findall(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", workflow))
    cells = [Cell.parse("6.4.33-oauth64-bookworm-imap-xoauth2-tls"),
             Cell.parse("6.4.32-oauth64-trixie-pop3-oauthbearer-starttls")]
    written = set(ci_matrix(cells, 0)["include"][0])
    assert used <= written, f"CI.yml uses matrix.{sorted(used - written)}, not in the include list"


def test_gitlab_runs_the_same_matrix_as_github() -> None:
    github = _load(GITHUB)["env"]
    gitlab = _load(GITLAB)["variables"]
    for name in ("MATRIX_SELECT", "MATRIX_SERVERS"):
        default = re.search(r"\|\|\s*'([^']*)'", github[name])
        assert default, f"CI.yml env {name} has no default"
        assert gitlab[name] == default[1], f"{name}: GitLab {gitlab[name]!r}, GitHub {default[1]!r}"
    assert gitlab["FETCHMAIL_UPSTREAM"] in github["FETCHMAIL_UPSTREAM"]
    assert gitlab["XOAUTH2_PLUGIN_UPSTREAM"] == github["XOAUTH2_PLUGIN_UPSTREAM"]
    # both mirror the relay cells' plugin with fetchmail, into the source cache their jobs share
    for path in (GITHUB, GITLAB):
        sources = [opts for _, cmd, opts in _invocations(path) if cmd == "sources"]
        assert sources and all("--plugin-upstream" in opts for opts in sources), (path, sources)


def test_every_needed_job_exists() -> None:
    for path, jobs in ((GITHUB, _load(GITHUB)["jobs"]), (GITLAB, _load(GITLAB))):
        for name, job in jobs.items():
            if not isinstance(job, dict):
                continue
            needs = job.get("needs", [])
            for need in [needs] if isinstance(needs, str) else needs:
                assert need in jobs, f"{path.name}: job {name} needs missing job {need}"
