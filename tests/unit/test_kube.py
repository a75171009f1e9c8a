"""The API client: its proxy is looked up once, not in a thread on every request."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobgate.kube import connect

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: t}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
"""


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return path


async def test_requests_do_not_consult_the_environment(kubeconfig: Path) -> None:
    api = await connect()
    try:
        assert api.rest_client.pool_manager.trust_env is False
        assert not api.configuration.proxy
    finally:
        await api.close()


async def test_a_proxy_in_the_environment_is_still_used(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    api = await connect()
    try:
        assert api.configuration.proxy == "http://proxy.example:3128"
        assert api.rest_client.proxy == "http://proxy.example:3128"
    finally:
        await api.close()


async def test_no_proxy_is_honoured(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    api = await connect()
    try:
        assert not api.configuration.proxy
    finally:
        await api.close()
