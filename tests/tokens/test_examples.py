"""Every example works as printed (issue 10 §3, issue 16 §4): each README block and each
`fetchmail-oauth2 example` output is fed to the program that reads it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.mockserver.oauth_provider import MockOAuthProvider
from tests.helpers.skips import skip_loudly
from tests.helpers.tokens_cli import REPO, Account, run_cli
from tokens.config import load_accounts

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"^```[a-z]*\n(.*?)^```", README, re.S | re.M)
POSTFIX_DIR = Path("/usr/sbin")


def _blocks(first_line: str) -> list[str]:
    found = [b for b in BLOCKS if b.splitlines()[0].startswith(first_line)]
    assert found, f"README has no block starting {first_line!r}"
    return found


def _private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


# -- the token config ---------------------------------------------------------------------


@pytest.mark.parametrize("doc", ["docs/google.md", "docs/microsoft.md"])
def test_docs_token_configs_parse_as_printed(tmp_path: Path, doc: str) -> None:
    blocks = re.findall(
        r"^```[a-z]*\n(# ~/.fetchmail-oauth2.conf.*?)^```", (REPO / doc).read_text(), re.S | re.M
    )
    assert blocks, doc
    for block in blocks:
        (cfg,) = load_accounts(_private(tmp_path / "c.conf", block))
        assert cfg.provider in doc and cfg.user


def test_readme_links_the_provider_docs() -> None:
    for doc in ("docs/google.md", "docs/microsoft.md", "docs/migrating-from-ogilvie.md"):
        assert f"]({doc})" in README and (REPO / doc).exists(), doc


def test_readme_token_config_parses_as_printed(tmp_path: Path) -> None:
    (block,) = _blocks("# ~/.fetchmail-oauth2.conf")
    (cfg,) = load_accounts(_private(tmp_path / "c.conf", block))
    assert cfg.provider == "microsoft" and "/organizations/" in cfg.token_url
    assert cfg.client_id == "00000000-0000-0000-0000-000000000000"
    assert cfg.user == "jane@example.com" and cfg.max_age_sec == 3000
    assert cfg.notify_cmd is not None and cfg.notify_cmd.endswith('"$(id -un)"')
    done = run_cli("-c", str(tmp_path / "c.conf"), "status")  # and through the CLI
    assert done.returncode == 0 and ": empty" in done.stdout, done.stderr


def test_comments_quotes_and_bom(tmp_path: Path) -> None:
    text = (
        "\ufeff# a comment\n"
        "client_id = abc#def   # the id keeps its inner #\n"
        'client_secret = "s3cret #1 \\"quoted\\""  # a quoted value keeps " #"\n'
        "refresh_token_file = r\taccess_token_file_is_not_this\n"
        "access_token_file=a # no spaces around = is fine\n"
        "provider=google\n"
    )
    (cfg,) = load_accounts(_private(tmp_path / "c", text))
    assert cfg.client_id == "abc#def"
    assert cfg.client_secret() == 's3cret #1 "quoted"'
    assert cfg.refresh_token_file == tmp_path / "r\taccess_token_file_is_not_this"
    assert cfg.access_token_file == tmp_path / "a"
    unclosed = _private(tmp_path / "u", 'client_id = "abc\n')
    done = run_cli("-c", str(unclosed), "status")
    assert done.returncode == 2 and "no closing quote" in done.stderr


# -- example outputs ----------------------------------------------------------------------


@pytest.fixture
def accounts(tmp_path: Path, provider: MockOAuthProvider) -> list[Account]:
    made = []
    for name, server in (("alice", "imap.gmail.com"), ("bob", "outlook.office365.com:993")):
        acct = Account(tmp_path, provider, name)
        acct.write_config(
            user=f"{name}@example.com",
            postfix_key=f"{name}@example.com",
            postfix_relay="[smtp.gmail.com]:587" if name == "alice" else "smtp.office365.com:587",
            imap_server=server,
        )
        made.append(acct)
    return made


def _example(accounts: list[Account], *args: str) -> str:
    configs = [a for acct in accounts for a in ("-c", str(acct.config))]
    done = run_cli(*configs, "example", *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("\n") and not done.stdout.endswith("\n\n\n")
    return done.stdout


VARIANTS = [
    ("systemd",),
    ("systemd", "--postfix-map", "/etc/postfix/sasl_passwd"),
    ("cron",),
    ("cron", "--postfix-map", "/etc/postfix/sasl_passwd"),
]


def _commands(kind: str, text: str) -> Iterator[str]:
    for line in text.splitlines():
        if kind == "systemd" and line.startswith(("ExecStart=", "ExecStartPre=")):
            yield line.split("=", 1)[1].lstrip("-")
        elif kind == "cron" and line and not line.startswith("#"):
            yield line.split(None, 5)[5] if not line.startswith("@") else line.split(None, 1)[1]


@pytest.mark.parametrize("variant", VARIANTS, ids=" ".join)
def test_examples_name_absolute_programs(accounts: list[Account], variant: tuple[str, ...]) -> None:
    text = _example(accounts, *variant, "--fetchmail", "/usr/bin/fetchmail")
    commands = list(_commands(variant[0], text))
    assert len(commands) >= 2
    for command in commands:
        program = command.split()[0]
        assert os.path.isabs(program) and os.access(program, os.X_OK), command
    job = commands[0]
    assert all(str(a.config) in job for a in accounts)  # one job for every account
    if "--postfix-map" in variant:
        assert "postfix --map /etc/postfix/sasl_passwd" in job
    else:
        assert job.endswith(" refresh")
    # the job, run as printed (less the map), works
    assert os.path.basename(job.split()[0]).startswith(("fetchmail-oauth2", "python"))


def _split_units(text: str, into: Path) -> list[Path]:
    parts = re.split(r"^# (\S+\.(?:service|timer))$", text, flags=re.M)
    units = []
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        unit = into / os.path.basename(name)
        unit.write_text(body)
        units.append(unit)
    return units


@pytest.mark.parametrize("variant", VARIANTS[:2], ids=" ".join)
def test_systemd_units_pass_systemd_analyze(
    accounts: list[Account], tmp_path: Path, variant: tuple[str, ...]
) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        skip_loudly("systemd-analyze not found (fetchmail-harness setup --test-peers installs it)")
    assert analyze is not None
    text = _example(accounts, *variant, "--fetchmail", "/usr/bin/fetchmail")
    units = _split_units(text, tmp_path)
    assert sorted(u.name for u in units) == [
        "fetchmail-oauth2.service",
        "fetchmail-oauth2.timer",
        "fetchmail.service",
    ]
    done = subprocess.run(
        [analyze, "verify", *map(str, units)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr
    # and the reader is a judge: a broken unit fails it
    broken = tmp_path / "broken.service"
    broken.write_text(units[0].read_text().replace("Type=oneshot", "Type=oneshoot"))
    bad = subprocess.run(
        [analyze, "verify", str(broken)], capture_output=True, text=True, check=False
    )
    assert "oneshoot" in bad.stdout + bad.stderr


@pytest.mark.parametrize("variant", VARIANTS[2:], ids=" ".join)
def test_crontab_lines_pass_crontab_check(
    accounts: list[Account], tmp_path: Path, variant: tuple[str, ...]
) -> None:
    crontab = shutil.which("crontab")
    if crontab is None:
        skip_loudly("crontab not found (fetchmail-harness setup --test-peers installs cron)")
    assert crontab is not None
    lines = _private(
        tmp_path / "crontab", _example(accounts, *variant, "--fetchmail", "/usr/bin/fetchmail")
    )
    done = subprocess.run(
        [crontab, "-n", str(lines)], capture_output=True, text=True, check=False
    )  # -n: check only, install nothing
    assert done.returncode == 0, done.stdout + done.stderr
    broken = _private(tmp_path / "broken", lines.read_text().replace("*/10 * * * *", "*/10 * *"))
    bad = subprocess.run([crontab, "-n", str(broken)], capture_output=True, text=True, check=False)
    assert bad.returncode != 0


def test_fetchmailrc_example_is_for_6x(accounts: list[Account]) -> None:
    text = _example(accounts, "fetchmailrc")
    assert "sslmode" not in text.split("# fetchmail 7")[0]
    assert text.count("  ssl sslcertck\n") == 2
    assert "poll outlook.office365.com protocol imap service 993" in text
    assert f'passwordfile "{accounts[0].access_file}"' in text
    assert "fetchmail 7" in text and "sslmode wrapped" in text and "auth oauthbearer" in text
    bare = run_cli("example", "fetchmailrc")  # no -c: a placeholder account
    assert bare.returncode == 0 and "ssl sslcertck" in bare.stdout


# -- fetchmailrc blocks to a patched fetchmail ----------------------------------------------


@pytest.fixture(scope="module")
def patched_fetchmail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """argv prefix that runs 6.4.33 + oauth64 built by the harness (bookworm): on the host
    when it runs there, else inside its build image ($FETCHMAIL_PATCHED_BINARY: that one)."""
    from tests.helpers.skips import FETCHMAIL_UPSTREAM, docker_available

    prebuilt = os.environ.get("FETCHMAIL_PATCHED_BINARY")
    if prebuilt:
        yield [prebuilt]
        return
    if FETCHMAIL_UPSTREAM is None:
        skip_loudly("no fetchmail source: set FETCHMAIL_UPSTREAM (see tests/helpers/skips.py)")
    if not docker_available():
        skip_loudly("no Docker engine to build fetchmail (run `fetchmail-harness setup`)")
    from harness.build.builder import BuildSpec, build
    from harness.source.mirror import FetchmailSource
    from harness.source.versions import Version

    cache = tmp_path_factory.mktemp("fetchmail-build")
    source = FetchmailSource(str(FETCHMAIL_UPSTREAM), cache=cache)
    spec = BuildSpec(Version.parse("6.4.33"), "bookworm", "oauth64")
    result = build(spec, source=source, cache=cache)
    probe = subprocess.run(
        [str(result.binary), "--version"], capture_output=True, text=True, check=False
    )
    if "release 6.4.33" in probe.stdout:
        yield [str(result.binary)]
        return
    yield from _in_build_image(result.binary)


def _in_build_image(binary: Path) -> Iterator[list[str]]:
    """The host cannot run the binary (older libssl): a container of its build image that
    sees the binary and the test's files at the same paths."""
    import docker

    from harness.build.images import ensure_build_image

    client = docker.from_env()
    image, _ = ensure_build_image(client, "bookworm")
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    volumes = {
        str(binary.parent): {"bind": str(binary.parent), "mode": "ro"},
        str(tmp): {"bind": str(tmp), "mode": "rw"},
    }
    container = client.containers.run(
        image.tag, ["sleep", "infinity"], detach=True, volumes=volumes, network_mode="none"
    )
    try:
        yield ["docker", "exec", container.id, str(binary)]
    finally:
        container.remove(force=True)


def _configdump(fetchmail: list[str], rc: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))
    return subprocess.run(
        [*fetchmail, "-f", str(rc), "--pidfile", str(home / "pid"), "--configdump"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.docker
@pytest.mark.fetchmail_source
@pytest.mark.slow
def test_fetchmailrc_blocks_parse_with_patched_fetchmail(
    patched_fetchmail: list[str], accounts: list[Account], tmp_path: Path
) -> None:
    texts = {f"README block {i}": b for i, b in enumerate(_blocks("# ~/.fetchmailrc"))}
    texts["example fetchmailrc"] = _example(accounts, "fetchmailrc")
    texts["example fetchmailrc (no -c)"] = run_cli("example", "fetchmailrc").stdout
    for label, text in texts.items():
        rc = _private(tmp_path / "fetchmailrc", text)
        done = _configdump(patched_fetchmail, rc, tmp_path)
        assert done.returncode == 0, f"{label}:\n{text}\n{done.stdout}{done.stderr}"
        assert "syntax error" not in done.stderr, label
        polls = re.findall(r"^poll (\S+)", text, re.M)
        for host in polls:
            assert f'"pollname":"{host}"' in done.stdout, (label, host)
        auths = re.findall(r'"auth":"(xoauth2|oauthbearer)"', done.stdout)
        assert len(auths) == len(polls), (label, done.stdout)
        assert done.stdout.count("'ssl':TRUE") == len(polls), label
        assert done.stdout.count("'sslcertck':TRUE") == len(polls), label
    # the judge can say no: fetchmail 7's keyword is a syntax error for 6.x
    rc = _private(
        tmp_path / "fetchmailrc",
        texts["example fetchmailrc"].replace("ssl sslcertck", "sslmode tls"),
    )
    assert "syntax error" in _configdump(patched_fetchmail, rc, tmp_path).stderr


# -- postfix ------------------------------------------------------------------------------


def _postfix_tool(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if found is None:
        skip_loudly(f"{name} not found (fetchmail-harness setup --test-peers installs postfix)")
    assert found is not None
    return found


def test_postfix_example_is_what_postfix_reads(accounts: list[Account], tmp_path: Path) -> None:
    postconf, postmap = _postfix_tool("postconf"), _postfix_tool("postmap")
    conf = tmp_path / "postfix"
    conf.mkdir()
    args = ("postfix", "--postfix-dir", str(conf))
    whole = _example(accounts, *args)
    names = re.findall(r"^# --- (\S+) ---$", whole, re.M)
    assert names == ["main.cf", "master.cf", "tls_policy", "relayhost_map", "sasl_passwd"]
    section = {n: _example(accounts, *args, "--section", n) for n in names}
    for name, text in section.items():  # the sections are exactly what the whole shows
        assert f"# --- {name} ---\n" in whole and text in whole
    (conf / "main.cf").write_text(section["main.cf"])
    (conf / "master.cf").write_text(section["master.cf"])
    shown = subprocess.run(
        [postconf, "-c", str(conf), "-n"], capture_output=True, text=True, check=True
    )
    assert shown.stderr == "", shown.stderr  # no unknown or malformed parameter
    for line in section["main.cf"].splitlines():
        if not line.startswith("#"):
            key, _, value = line.partition("=")
            expected = f"{key.strip()} = {value.strip()}".rstrip()
            assert expected in shown.stdout.splitlines(), line
    assert "smtp_sasl_mechanism_filter = xoauth2" in shown.stdout
    assert f"smtp_sasl_password_maps = hash:{conf}/sasl_passwd" in shown.stdout
    assert "smtp_sender_dependent_authentication = yes" in shown.stdout
    for name, key, value in (
        ("tls_policy", "[smtp.office365.com]:587", "encrypt"),
        ("relayhost_map", "alice@example.com", "[smtp.gmail.com]:587"),
        ("relayhost_map", "bob@example.com", "[smtp.office365.com]:587"),
    ):
        (conf / name).write_text(section[name])
        subprocess.run([postmap, "-c", str(conf), f"hash:{conf / name}"], check=True)
        got = subprocess.run(
            [postmap, "-c", str(conf), "-q", key, f"hash:{conf / name}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert got.stdout.strip() == value, (name, key, got)
    assert str(accounts[0].config) in section["sasl_passwd"]  # names the job that writes it


def test_postfix_example_and_map_agree(
    accounts: list[Account], tmp_path: Path, provider: MockOAuthProvider
) -> None:
    """The job the example names writes the map the main.cf lines point at, with the keys
    the relayhost map routes."""
    postmap = _postfix_tool("postmap")
    conf = tmp_path / "postfix"
    conf.mkdir()
    (conf / "main.cf").write_text("")
    for acct in accounts:
        acct.seed(acct.name + "@example.com")
    text = _example(accounts, "postfix", "--postfix-dir", str(conf), "--section", "sasl_passwd")
    job = text.splitlines()[1].removeprefix("# ")
    argv = [*job.split(), "--postmap", postmap, "--postfix-config-dir", str(conf)]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert done.returncode == 0, done.stderr
    relays = _example(accounts, "postfix", "--postfix-dir", str(conf), "--section", "relayhost_map")
    for line in relays.splitlines():
        sender = line.split()[0]
        got = subprocess.run(
            [postmap, "-c", str(conf), "-q", sender, f"hash:{conf}/sasl_passwd"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert got.stdout.startswith(f"{sender}:mock-at-"), (sender, got)


def test_postfix_example_needs_relaying_accounts(account: Account) -> None:
    done = account.run("example", "postfix")
    assert done.returncode == 2 and "postfix_key" in done.stderr
    assert sys.executable  # (the CLI ran under this interpreter)


@pytest.mark.docker
@pytest.mark.fetchmail_source
@pytest.mark.slow
def test_fetchmailrc_in_the_build_image(
    patched_fetchmail: list[str], accounts: list[Account], tmp_path: Path
) -> None:
    """The way used where the host cannot run the bookworm binary works too."""
    from tests.helpers.skips import docker_available

    if not docker_available():
        skip_loudly("no Docker engine to run the build image")
    binary = Path(patched_fetchmail[-1])
    rc = _private(tmp_path / "fetchmailrc", _example(accounts, "fetchmailrc"))
    runner = _in_build_image(binary)
    fetchmail = next(runner)
    try:
        done = _configdump(fetchmail, rc, tmp_path)
    finally:
        runner.close()
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"pollname":"outlook.office365.com"' in done.stdout
