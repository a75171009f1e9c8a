"""Where the control-plane binaries come from, and the certificates it runs with.

``find_assets`` answers the folder holding ``etcd`` and ``kube-apiserver``
(``KUBEBUILDER_ASSETS``, or ``scripts/get-control-plane.sh``, which builds or installs them
once into a cache keyed by the versions in ``scripts/versions.env``); ``make_certificates``
makes a throwaway CA, the apiserver's serving certificate and a service-account key pair
with the ``openssl`` CLI. Used by :mod:`jobgate.testing.controlplane`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
GET_SCRIPT = REPO_ROOT / "scripts" / "get-control-plane.sh"
VERSIONS_ENV = REPO_ROOT / "scripts" / "versions.env"
PROGRAMS = ("etcd", "kube-apiserver")

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = jobgate-local
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
subjectAltName = IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,\
DNS:kubernetes.default,DNS:kubernetes.default.svc
"""


class ControlPlaneError(RuntimeError):
    """The control plane could not be obtained, started or found."""


def read_versions(path: Path = VERSIONS_ENV) -> dict[str, str]:
    """The pinned versions: the ``KEY=VALUE`` lines of ``scripts/versions.env``."""
    versions: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            versions[key.strip()] = value.strip()
    return versions


def _has_binaries(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in PROGRAMS)


def find_assets(explicit: Path | None = None) -> Path:
    """The folder holding ``etcd`` and ``kube-apiserver``.

    ``explicit`` if given, else ``KUBEBUILDER_ASSETS`` when it holds both, else whatever
    ``scripts/get-control-plane.sh`` prints (it builds or installs them on first use, which
    takes minutes; its progress goes to stderr).
    """
    if explicit is not None:
        if not _has_binaries(explicit):
            raise ControlPlaneError(f"{explicit} lacks an executable etcd or kube-apiserver")
        return explicit.resolve()
    env = os.environ.get("KUBEBUILDER_ASSETS")
    if env and _has_binaries(Path(env)):
        return Path(env).resolve()
    if not GET_SCRIPT.exists():
        raise ControlPlaneError(
            f"{GET_SCRIPT} not found (jobgate is not run from its source tree): "
            "set KUBEBUILDER_ASSETS to a folder holding etcd and kube-apiserver"
        )
    done = subprocess.run(
        ["bash", str(GET_SCRIPT)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise ControlPlaneError(f"{GET_SCRIPT} failed (exit code {done.returncode}); see above")
    assets = Path(lines[-1])
    if not _has_binaries(assets):
        raise ControlPlaneError(f"{GET_SCRIPT} printed {assets}, which lacks the binaries")
    return assets


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 (held open together while picked)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _openssl(pki: Path, *args: str) -> None:
    done = subprocess.run(
        ["openssl", *args], cwd=pki, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise ControlPlaneError(f"openssl {' '.join(args)} failed:\n{done.stderr}")


def make_certificates(pki: Path) -> None:
    """Write into ``pki``: a CA (``ca.crt``), the apiserver's serving certificate for
    127.0.0.1/localhost (``apiserver.crt``/``.key``) and an RSA service-account key pair
    (``sa.key``/``sa.pub``)."""
    pki.mkdir(parents=True, exist_ok=True)
    (pki / "openssl.cnf").write_text(_OPENSSL_CONFIG)
    days = "-days 3650 -sha256"
    new_key = "-newkey rsa:2048 -nodes -config openssl.cnf"
    for command in (
        f"req -x509 {new_key} -extensions ca {days} -subj /CN=jobgate-local-ca"
        " -keyout ca.key -out ca.crt",
        f"req -new {new_key} -subj /CN=kube-apiserver -keyout apiserver.key -out apiserver.csr",
        f"x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -set_serial {secrets.randbits(63)}"
        f" {days} -extfile openssl.cnf -extensions server -out apiserver.crt",
        "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key",
        "pkey -in sa.key -pubout -out sa.pub",
    ):
        _openssl(pki, *command.split())
    for key in pki.glob("*.key"):
        key.chmod(0o600)
