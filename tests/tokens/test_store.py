"""The refresh token kept by a command pair instead of a file (issue 11 §5, optional)."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.mockserver.oauth_provider import MockOAuthProvider
from tests.helpers.tokens_cli import Account


def _vault(account: Account) -> tuple[Path, Path, dict[str, str]]:
    """A stand-in for `pass`/gpg: a file the two commands read and write, and a log of runs."""
    vault, log = account.dir / "vault", account.dir / "vault.log"
    script = account.dir / "vault.py"
    script.write_text(
        "import sys\n"
        f"vault, log = {str(vault)!r}, {str(log)!r}\n"
        "open(log, 'a').write(sys.argv[1] + '\\n')\n"
        "if sys.argv[1] == 'show':\n"
        "    print(open(vault).read().strip())\n"
        "else:\n"
        "    open(vault, 'w').write(sys.stdin.read())\n"
    )
    commands = {
        "refresh_token_file": None,
        "refresh_token_cmd": f"{sys.executable} {script} show",
        "refresh_token_store_cmd": f"{sys.executable} {script} insert",
    }
    return vault, log, commands  # type: ignore[return-value]


def _runs(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_refresh_token_kept_by_commands(account: Account, provider: MockOAuthProvider) -> None:
    vault, log, commands = _vault(account)
    account.write_config(**commands)
    provider.rotate_refresh_tokens = True
    provider.on_device_authorization(lambda code: provider.approve_device(code))
    done = account.run("authorize", "--flow", "device")
    assert done.returncode == 0, done.stderr
    assert _runs(log) == ["insert"]  # the first refresh token went to the store command
    first = vault.read_text().strip()
    assert provider.refresh_tokens[first].active
    assert not account.refresh_file.exists()

    assert account.run("refresh").returncode == 0
    assert _runs(log) == ["insert"]  # fresh: the read command (a gpg prompt) did not run
    forced = account.run("refresh", "--force")
    assert forced.returncode == 0, forced.stderr
    assert _runs(log) == ["insert", "show", "insert"]  # read once, rotated token stored
    rotated = vault.read_text().strip()
    assert rotated != first and provider.refresh_tokens[rotated].active
    assert provider.is_active(account.access_file.read_text().strip())


def test_failing_store_command_keeps_the_new_token(
    account: Account, provider: MockOAuthProvider
) -> None:
    _, _, commands = _vault(account)
    commands["refresh_token_store_cmd"] = f"{sys.executable} -c 'import sys; sys.exit(5)'"
    account.write_config(**commands)
    provider.on_device_authorization(lambda code: provider.approve_device(code))
    done = account.run("authorize", "--flow", "device")
    assert done.returncode == 2 and "exited 5" in done.stderr, done.stderr
    rescue = account.dir / "account.access.state.refresh-rescue"
    assert provider.refresh_tokens[rescue.read_text().strip()].active
    assert oct(rescue.stat().st_mode & 0o777) == "0o600"
    assert str(rescue) in done.stderr and rescue.read_text().strip() not in done.stderr


def test_file_or_command_pair(account: Account) -> None:
    _, _, commands = _vault(account)
    both = dict(commands, refresh_token_file=str(account.refresh_file))
    account.write_config(**both)
    assert "not both" in account.run("status").stderr
    half = dict(commands, refresh_token_store_cmd=None)
    account.write_config(**half)
    done = account.run("status")
    assert done.returncode == 2 and "refresh_token_store_cmd" in done.stderr
