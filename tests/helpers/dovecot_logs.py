"""Dovecot 2.3.19 auth debug log lines, as a cell against it sees them."""

from __future__ import annotations

T = "Dec 01 11:19:46 "
EXPIRED_XOAUTH2 = "\n".join([
    T + "auth: Debug: client in: AUTH\t1\tXOAUTH2\tservice=imap\tsecured=tls\tresp=dXNlcj0=",
    T + "auth: Debug: client passdb out: CONT\t1\teyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwi"
        "c2NvcGUiOiJtYWlsIn0=",
    T + "auth: Debug: client in: CONT\t1\t (previous base64 data may contain sensitive data)",
    T + "auth: Debug: client passdb out: FAIL\t1\tuser=user@example.com",
    T + "imap-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts "
        "in 0 secs): user=<user@example.com>, method=XOAUTH2, rip=127.0.0.1, TLS",
])
ROTATED_OAUTHBEARER = "\n".join([
    T + "auth: Debug: client in: AUTH\t1\tOAUTHBEARER\tservice=pop3\tresp=bixhPQ==",
    T + "auth: Debug: client passdb out: CONT\t1\teyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=",
    T + "auth: Debug: client in: CONT\t1\tAQ== (previous base64 data may contain sensitive data)",
    T + "auth: Debug: client passdb out: FAIL\t1\tuser=user@example.com",
    T + "auth: Debug: client in: AUTH\t1\tOAUTHBEARER\tservice=pop3\tresp=bixhPQ==",
    T + "auth: Debug: client passdb out: OK\t1\tuser=user@example.com\ttoken=mock-at-x",
    T + "pop3-login: Info: Login: user=<user@example.com>, method=OAUTHBEARER, rip=127.0.0.1",
])
# the token's introspection answered 503: Dovecot's IMAP NO [UNAVAILABLE], its POP3 -ERR [SYS/TEMP]
UNAVAILABLE_OAUTHBEARER = "\n".join([
    T + "auth: Debug: client in: AUTH\t1\tOAUTHBEARER\tservice=imap\tsecured=tls\tresp=bixhPQ==",
    T + "auth: Error: oauth2(user@example.com,127.0.0.1,<r2GKQJNhHIV/AAAB>): oauth2 failed: "
        "Introspection failed: 503 Service Unavailable",
    T + "auth: Debug: client passdb out: FAIL\t1\tuser=user@example.com\tcode=temp_fail",
])
