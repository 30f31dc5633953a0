"""The CA bundle is loaded only where TLS can happen; nothing ever connects unverified."""

from __future__ import annotations

import ssl

import pytest

from reconciler.client.core import CoderClient
from reconciler.client.tls import verify_for
from reconciler.client.transport import LeanTransport
from reconciler.errors import UsageError

PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXIES:
        monkeypatch.delenv(name, raising=False)


def test_https_keeps_httpx_default_verification() -> None:
    assert verify_for("https://catalyst-usw.agentuity.cloud") is True
    assert verify_for("HTTPS://example.com") is True


def test_plain_http_gets_a_context_that_verifies_and_trusts_nothing() -> None:
    context = verify_for("http://127.0.0.1:8787")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs() == []


@pytest.mark.parametrize("variable", PROXIES)
def test_a_configured_proxy_keeps_the_default(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "https://proxy.example:3128")
    assert verify_for("http://127.0.0.1:8787") is True


async def test_without_a_proxy_the_client_uses_the_lean_transport() -> None:
    async with CoderClient("http://127.0.0.1:9", token="t") as client:
        assert isinstance(client._http._transport, LeanTransport)


async def test_with_a_proxy_the_client_keeps_httpx_transport_and_the_plain_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    async with CoderClient("https://catalyst-usw.agentuity.cloud", token="t") as client:
        assert not isinstance(client._http._transport, LeanTransport)
        assert client._http._mounts  # httpx mounted the proxy from the environment


@pytest.mark.parametrize("value", ["httpx", " HTTPX "])
async def test_the_httpx_transport_can_be_asked_for(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("RECONCILER_HTTP_TRANSPORT", value)
    async with CoderClient("http://127.0.0.1:9", token="t") as client:
        assert not isinstance(client._http._transport, LeanTransport)
    monkeypatch.setenv("RECONCILER_HTTP_TRANSPORT", "lean")
    async with CoderClient("http://127.0.0.1:9", token="t") as client:
        assert isinstance(client._http._transport, LeanTransport)


def test_an_unknown_transport_choice_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_HTTP_TRANSPORT", "curl")
    with pytest.raises(UsageError, match="must be 'lean' or 'httpx', not 'curl'"):
        CoderClient("http://127.0.0.1:9", token="t")
