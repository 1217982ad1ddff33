"""Reading Dovecot's auth debug log: attempts, the answer to the error challenge, logins,
refused password methods, responses too large (lines as Dovecot 2.3.19 writes them)."""

from __future__ import annotations

from harness.cell import dovecotlog
from tests.helpers.dovecot_logs import (
    EXPIRED_XOAUTH2,
    ROTATED_OAUTHBEARER,
    UNAVAILABLE_OAUTHBEARER,
    T,
)


def test_an_expired_xoauth2_token_answered_with_the_empty_line() -> None:
    log = dovecotlog.parse(EXPIRED_XOAUTH2)
    [attempt] = log.attempts
    assert attempt.mechanism == "XOAUTH2" and attempt.outcome == "FAIL"
    assert attempt.error_challenge == {"status": "401", "schemes": "bearer", "scope": "mail"}
    assert attempt.answer == ""
    assert dovecotlog.wrong_answers(log) == [] and log.refused == 1 and log.logins == []
    assert log.other_methods == []


def test_a_refused_then_rotated_oauthbearer_login() -> None:
    log = dovecotlog.parse(ROTATED_OAUTHBEARER)
    assert [(a.mechanism, a.answer, a.outcome) for a in log.attempts] == [
        ("OAUTHBEARER", "AQ==", "FAIL"), ("OAUTHBEARER", None, "OK")]
    assert log.logins == ["OAUTHBEARER"] and log.refused == 1
    assert dovecotlog.wrong_answers(log) == []


def test_a_temporary_failure_is_no_refusal() -> None:
    log = dovecotlog.parse(UNAVAILABLE_OAUTHBEARER)
    assert [(a.mechanism, a.error_challenge, a.outcome) for a in log.attempts] == [
        ("OAUTHBEARER", None, "TEMPFAIL")]
    assert (log.temporary_failures, log.refused, log.logins) == (1, 0, [])
    assert dovecotlog.parse(EXPIRED_XOAUTH2).temporary_failures == 0


def test_a_wrong_answer_to_the_error_challenge_is_named() -> None:
    wrong = EXPIRED_XOAUTH2.replace("CONT\t1\t (previous", "CONT\t1\tAQ== (previous")
    assert dovecotlog.wrong_answers(dovecotlog.parse(wrong)) == [
        "XOAUTH2 answered 'AQ==', not ''"]
    empty = ROTATED_OAUTHBEARER.replace("CONT\t1\tAQ== (previous", "CONT\t1\t (previous")
    assert dovecotlog.wrong_answers(dovecotlog.parse(empty)) == [
        "OAUTHBEARER answered '', not 'AQ=='"]


def test_password_methods_and_oversized_responses() -> None:
    log = dovecotlog.parse("\n".join([
        T + "imap-login: Info: Authenticate PLAIN failed: Unsupported authentication "
            "mechanism.: user=<>, method=PLAIN, rip=127.0.0.1, secured",
        T + "imap-login: Info: Disconnected: Authentication response too large (no auth "
            "attempts in 0 secs): user=<>, method=OAUTHBEARER, rip=127.0.0.1, TLS",
    ]))
    assert log.other_methods == ["PLAIN"] and log.too_large == 1 and log.attempts == []


def test_non_auth_lines_leave_out_the_lines_that_carry_tokens() -> None:
    rest = dovecotlog.non_auth_lines(ROTATED_OAUTHBEARER)
    assert "mock-at-x" not in rest and "Login: user=<user@example.com>" in rest
