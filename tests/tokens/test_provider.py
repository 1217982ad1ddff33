"""The mock OAuth2 provider's own contract (others' tests rely on it), over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from harness.mockserver.oauth_provider import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    PUBLIC_CLIENT_ID,
    MockOAuthProvider,
)

SECRET = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}


def _post(
    url: str, fields: dict[str, str], basic: tuple[str, str] | None = None
) -> tuple[int, dict[str, Any], Any]:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode())
    if basic:
        request.add_header(
            "Authorization", "Basic " + base64.b64encode(":".join(basic).encode()).decode()
        )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read()), reply.headers
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body), exc.headers
        except ValueError:
            return exc.code, {"raw": body.decode()}, exc.headers


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _authorize(provider: MockOAuthProvider, **params: str) -> dict[str, str]:
    query = {
        "response_type": "code",
        "redirect_uri": "http://127.0.0.1:9/cb",
        "scope": "mail",
        "state": "s1",
        **params,
    }
    url = provider.authorize_url + "?" + urllib.parse.urlencode(query)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.build_opener(_NoRedirect).open(url, timeout=10)
    assert info.value.code == 302
    location = info.value.headers["Location"]
    assert location.startswith("http://127.0.0.1:9/cb?")
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def _challenge(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


@pytest.fixture
def provider() -> Any:
    with MockOAuthProvider(device_interval=0) as p:
        yield p


def test_code_flow_with_pkce_s256(provider: MockOAuthProvider) -> None:
    verifier = "v" * 50
    got = _authorize(
        provider,
        client_id=PUBLIC_CLIENT_ID,
        code_challenge=_challenge(verifier),
        code_challenge_method="S256",
        login_hint="carol@example.com",
    )
    assert got["state"] == "s1"
    exchange = {
        "grant_type": "authorization_code",
        "code": got["code"],
        "redirect_uri": "http://127.0.0.1:9/cb",
        "client_id": PUBLIC_CLIENT_ID,
    }
    status, body, _ = _post(provider.token_url, {**exchange, "code_verifier": "w" * 50})
    assert status == 400 and body["error"] == "invalid_grant"  # wrong verifier; code now used
    got = _authorize(
        provider,
        client_id=PUBLIC_CLIENT_ID,
        code_challenge=_challenge(verifier),
        code_challenge_method="S256",
    )
    exchange["code"] = got["code"]
    status, body, _ = _post(provider.token_url, {**exchange, "code_verifier": verifier})
    assert status == 200 and body["token_type"] == "Bearer" and body["refresh_token"]
    status, again, _ = _post(provider.token_url, {**exchange, "code_verifier": verifier})
    assert status == 400 and again["error"] == "invalid_grant"  # codes are single use
    assert provider.is_active(body["access_token"])


def test_public_client_needs_pkce_and_errors_redirect(provider: MockOAuthProvider) -> None:
    assert _authorize(provider, client_id=PUBLIC_CLIENT_ID)["error"] == "invalid_request"
    got = _authorize(
        provider, client_id=DEFAULT_CLIENT_ID, code_challenge="abc", code_challenge_method="plain"
    )
    status, body, _ = _post(
        provider.token_url,
        {
            "grant_type": "authorization_code",
            "code": got["code"],
            "code_verifier": "abc",
            "redirect_uri": "http://127.0.0.1:9/cb",
            **SECRET,
        },
    )
    assert status == 200, body
    provider.authorize_error = "access_denied"
    assert _authorize(provider, client_id=DEFAULT_CLIENT_ID) == {
        "error": "access_denied",
        "state": "s1",
    }


def test_client_authentication(provider: MockOAuthProvider) -> None:
    grant = provider.mint_token()
    fields = {"grant_type": "refresh_token", "refresh_token": grant["refresh_token"]}
    status, body, _ = _post(
        provider.token_url, {**fields, "client_id": DEFAULT_CLIENT_ID, "client_secret": "nope"}
    )
    assert status == 401 and body["error"] == "invalid_client"
    status, body, _ = _post(
        provider.token_url, fields, basic=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    )
    assert status == 200 and "refresh_token" not in body  # not rotating by default


def test_introspection_and_revocation(provider: MockOAuthProvider) -> None:
    grant = provider.mint_token("dave@example.com", scope="mail extra")
    status, _, _ = _post(provider.introspection_url, {"token": grant["access_token"]})
    assert status == 401  # resource credentials required
    status, body, _ = _post(
        provider.introspection_url,
        {"token": grant["access_token"]},
        basic=provider.resource_credentials,
    )
    assert status == 200 and body["active"] is True
    assert body["username"] == body["email"] == body["sub"] == "dave@example.com"
    assert body["scope"] == "mail extra" and body["client_id"] == DEFAULT_CLIENT_ID
    assert isinstance(body["exp"], int)
    status, _, _ = _post(provider.revocation_url, {"token": grant["refresh_token"], **SECRET})
    assert status == 200
    _, body, _ = _post(
        provider.introspection_url,
        {"token": grant["access_token"]},
        basic=provider.resource_credentials,
    )
    assert body == {"active": False}
    status, body, _ = _post(
        provider.token_url,
        {"grant_type": "refresh_token", "refresh_token": grant["refresh_token"], **SECRET},
    )
    assert status == 400 and body["error"] == "invalid_grant"
    other = provider.mint_token()
    provider.expire(other["access_token"])
    _, body, _ = _post(
        provider.introspection_url,
        {"token": other["access_token"]},
        basic=provider.resource_credentials,
    )
    assert body == {"active": False}


def test_device_endpoint_and_polling(provider: MockOAuthProvider) -> None:
    status, start, _ = _post(provider.device_url, {"scope": "mail", **SECRET})
    assert status == 200 and {
        "device_code",
        "user_code",
        "verification_uri",
        "interval",
        "expires_in",
    } <= set(start)
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": start["device_code"],
        **SECRET,
    }
    assert _post(provider.token_url, poll)[1]["error"] == "authorization_pending"
    with urllib.request.urlopen(start["verification_uri_complete"], timeout=10) as page:
        assert page.status == 200  # the "user" approves over HTTP
    status, body, _ = _post(provider.token_url, poll)
    assert status == 200 and body["access_token"]
    assert _post(provider.token_url, poll)[1]["error"] == "invalid_grant"  # used


def test_fault_injection_and_counters(provider: MockOAuthProvider) -> None:
    grant = provider.mint_token()
    fields = {"grant_type": "refresh_token", "refresh_token": grant["refresh_token"], **SECRET}
    provider.inject("token", "rate_limit", retry_after=7)
    provider.inject("token", "status", status=502, count=2)
    provider.inject("token", "invalid_json")
    status, _, headers = _post(provider.token_url, fields)
    assert status == 429 and headers["Retry-After"] == "7"
    assert _post(provider.token_url, fields)[0] == 502
    assert _post(provider.token_url, fields)[0] == 502
    with pytest.raises(json.JSONDecodeError):  # invalid_json: a 200 with garbage
        _post(provider.token_url, fields)
    assert _post(provider.token_url, fields)[0] == 200
    assert provider.count("token") == 5
    assert provider.count("token:refresh_token") == 1  # only requests that reached the grant
    provider.inject("introspect", "drop")
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(provider.introspection_url, data=b"token=x", timeout=10)
    with pytest.raises(ValueError):
        provider.inject("nowhere", "drop")


def test_ipv6_loopback() -> None:
    try:
        p = MockOAuthProvider(host="::1").start()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")
    try:
        assert p.url.startswith("http://[::1]:")
        status, body, _ = _post(p.device_url, SECRET)
        assert status == 200 and body["user_code"]
    finally:
        p.stop()


def test_an_internal_error_is_answered_and_recorded(
    provider: MockOAuthProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(provider, "handle_token", broken)
    status, body, _ = _post(provider.token_url, {"grant_type": "refresh_token", **SECRET})
    assert status == 500 and body["error"] == "server_error"
    assert provider.errors == ["token: RuntimeError: boom"]
    provider.errors.clear()  # the fixture checks that no other test left one


def test_misbehaviours_for_hostile_provider_tests(provider: MockOAuthProvider) -> None:
    """The faults issue 11's tests rely on, seen from a plain HTTP client."""
    grant = provider.mint_token()
    refresh = {**SECRET, "grant_type": "refresh_token", "refresh_token": grant["refresh_token"]}

    class _Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    provider.inject("token", "redirect", status=307)
    request = urllib.request.Request(provider.token_url, urllib.parse.urlencode(refresh).encode())
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.build_opener(_Keep).open(request, timeout=10)
    assert info.value.code == 307
    assert info.value.headers["Location"] == provider.url + "/elsewhere"
    # what a client that follows it would get, and what it would have sent there
    status, body, _ = _post(provider.url + "/elsewhere", refresh, basic=("id", "secret"))
    assert (status, body["access_token"]) == (200, "elsewhere-token")
    assert provider.headers_seen[-1][1]["Authorization"].startswith("Basic ")

    provider.inject("token", "mangle", fields={"expires_in": "1e400", "extra": "NaN"})
    raw = urllib.request.urlopen(
        urllib.request.Request(provider.token_url, urllib.parse.urlencode(refresh).encode()),
        timeout=10,
    ).read()
    assert b'"expires_in": 1e400' in raw and b'"extra": NaN' in raw
    assert json.loads(raw)["access_token"].startswith("mock-at-")  # a real token otherwise

    provider.inject("token", "error", error="interaction_required", description="MFA")
    status, body, _ = _post(provider.token_url, refresh)
    assert (status, body["error"], body["error_description"]) == (
        400,
        "interaction_required",
        "MFA",
    )

    provider.inject("token", "oversized", size=300_000, declare_length=False)
    with urllib.request.urlopen(
        urllib.request.Request(provider.token_url, urllib.parse.urlencode(refresh).encode()),
        timeout=30,
    ) as reply:
        assert reply.headers["Content-Length"] is None
        assert len(reply.read()) > 300_000
    assert provider.errors == []
