"""A local Kubernetes control plane: a real etcd and kube-apiserver on 127.0.0.1.

The envtest approach (no kubelet, no controller-manager): enough for an operator whose work
lives in custom resources, with no pods to run and no garbage collection. It serves three
users: ``scripts/run_dev.sh``, the e2e tests' session fixture, and people, by hand::

    python -m jobgate.testing.controlplane up --dir /tmp/cp            # foreground; Ctrl-C stops
    python -m jobgate.testing.controlplane up --dir /tmp/cp --detach   # returns once ready
    python -m jobgate.testing.controlplane down --dir /tmp/cp
    python -m jobgate.testing.controlplane assets                      # the binaries folder

or from Python::

    with LocalControlPlane(workdir=tmp) as plane:
        ...  # plane.kubeconfig, plane.server, plane.token

The binaries come from ``scripts/get-control-plane.sh`` (``KUBEBUILDER_ASSETS`` or a cache
keyed by version, filled on first use). Certificates are made with the ``openssl`` CLI; the
admin user is a bearer token in group ``system:masters``. Each start is a fresh cluster (the
etcd data in the work directory is wiped). Only the processes started here are ever stopped,
by the pids recorded in ``DIR/pids``.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

from jobgate.testing.assets import (
    PROGRAMS,
    ControlPlaneError,
    find_assets,
    free_ports,
    make_certificates,
)
from jobgate.testing.pids import STOP_GRACE_SECONDS, ours, read_pids, stop_recorded


@dataclass
class LocalControlPlane:
    """etcd + kube-apiserver in ``workdir`` (logs, certificates, kubeconfig, pids, etcd data).

    ``assets_dir`` names the binaries' folder; by default ``find_assets()`` decides.
    """

    workdir: Path
    assets_dir: Path | None = None
    _server: str = field(default="", init=False, repr=False)
    _token: str = field(default="", init=False, repr=False)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False, repr=False)

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (server, CA file, bearer token, current context)."""
        return self.workdir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        """The CA certificate that signed the apiserver's serving certificate."""
        return self.workdir / "pki" / "ca.crt"

    @property
    def server(self) -> str:
        """``https://127.0.0.1:PORT``."""
        if not self._server:
            self._load_kubeconfig()
        return self._server

    @property
    def token(self) -> str:
        """The admin's bearer token (group ``system:masters``)."""
        if not self._token:
            self._load_kubeconfig()
        return self._token

    def _load_kubeconfig(self) -> None:
        """Recover server and token of a plane started by another process (``up --detach``)."""
        try:
            text = self.kubeconfig.read_text()
        except FileNotFoundError:
            raise ControlPlaneError(f"no control plane started in {self.workdir}") from None
        server = re.search(r"^\s*server: (\S+)$", text, re.M)
        token = re.search(r"^\s*token: (\S+)$", text, re.M)
        if not server or not token:
            raise ControlPlaneError(f"{self.kubeconfig} lacks a server or a token")
        self._server, self._token = server[1], token[1]

    def __enter__(self) -> LocalControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 60) -> None:
        """Start etcd and kube-apiserver; return once ``/readyz`` answers 200.

        On failure everything started is stopped again and a ``ControlPlaneError`` quotes
        the tails of the logs. Obtaining the binaries the first time is not counted in
        ``timeout``.
        """
        if self._procs:
            raise ControlPlaneError(f"already started in {self.workdir}")
        self.workdir = self.workdir.resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if any(ours(pid, self.workdir) for pid in read_pids(self.workdir)):
            raise ControlPlaneError(
                f"a control plane is already running in {self.workdir}; stop it first "
                f"(python -m jobgate.testing.controlplane down --dir {self.workdir})"
            )
        assets = find_assets(self.assets_dir)
        for stale in ("etcd-data", "pki", "kubeconfig", "pids"):
            path = self.workdir / stale
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        pki = self.workdir / "pki"
        make_certificates(pki)
        self._token = secrets.token_urlsafe(32)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self._token},admin,admin,"system:masters"\n')
        tokens.chmod(0o600)
        etcd_client, etcd_peer, port = free_ports(3)
        self._server = f"https://127.0.0.1:{port}"
        etcd_url, peer_url = f"http://127.0.0.1:{etcd_client}", f"http://127.0.0.1:{etcd_peer}"
        # etcd 3.4 warns about unknown ETCD_* variables: start it with none inherited.
        etcd_env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        try:
            self._spawn(
                "etcd",
                [
                    str(assets / "etcd"),
                    "--name=jobgate-local",
                    f"--data-dir={self.workdir / 'etcd-data'}",
                    f"--listen-client-urls={etcd_url}",
                    f"--advertise-client-urls={etcd_url}",
                    f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}",
                    f"--initial-cluster=jobgate-local={peer_url}",
                    "--initial-cluster-state=new",
                    "--unsafe-no-fsync",  # a throwaway cluster: speed over durability
                    "--quota-backend-bytes=4294967296",
                    "--logger=zap",
                    "--log-outputs=stderr",
                ],
                env=etcd_env,
            )
            self._spawn(
                "kube-apiserver",
                [
                    str(assets / "kube-apiserver"),
                    f"--etcd-servers={etcd_url}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={port}",
                    f"--tls-cert-file={pki / 'apiserver.crt'}",
                    f"--tls-private-key-file={pki / 'apiserver.key'}",
                    f"--client-ca-file={pki / 'ca.crt'}",
                    f"--token-auth-file={tokens}",
                    "--authorization-mode=RBAC",
                    "--service-account-issuer=https://kubernetes.default.svc",
                    f"--service-account-key-file={pki / 'sa.pub'}",
                    f"--service-account-signing-key-file={pki / 'sa.key'}",
                    "--service-cluster-ip-range=10.0.0.0/24",
                    "--endpoint-reconciler-type=none",
                    "--disable-admission-plugins=ServiceAccount",
                    "--allow-privileged=true",
                ],
                env=dict(os.environ),
            )
            self._write_kubeconfig()
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        with (self.workdir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                start_new_session=True,  # Ctrl-C in a terminal is for us, not for them
            )
        if not self._procs:
            atexit.register(self.stop)  # a forgotten stop() must not leave them running
        self._procs[name] = proc
        (self.workdir / "pids").write_text("".join(f"{p.pid}\n" for p in self._procs.values()))

    def _write_kubeconfig(self) -> None:
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\n"
            "clusters:\n- name: jobgate-local\n  cluster:\n"
            f"    server: {self._server}\n    certificate-authority: {self.ca_file}\n"
            "users:\n- name: admin\n  user:\n"
            f"    token: {self._token}\n"
            "contexts:\n- name: jobgate-local\n  context:\n"
            "    cluster: jobgate-local\n    user: admin\n"
            "current-context: jobgate-local\n"
        )
        self.kubeconfig.chmod(0o600)

    def _wait_ready(self, timeout: float) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(
            f"{self._server}/readyz", headers={"Authorization": f"Bearer {self._token}"}
        )
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise ControlPlaneError(
                        f"{name} exited with code {proc.returncode}:\n" + self.log_tails()
                    )
            try:
                with urllib.request.urlopen(request, context=context, timeout=5) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            if time.monotonic() >= deadline:
                raise ControlPlaneError(
                    f"kube-apiserver not ready after {timeout:g}s (last: {last}):\n"
                    + self.log_tails()
                )
            time.sleep(0.1)

    def log_tails(self, lines: int = 20) -> str:
        """The last ``lines`` lines of each log, for error messages."""
        out = []
        for name in reversed(PROGRAMS):
            path = self.workdir / f"{name}.log"
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        """Stop the processes of this plane: SIGTERM, SIGKILL after 10 s each. Idempotent.

        When this object did not start them (``up --detach`` did, in another process), stop
        the ones recorded in ``workdir/pids`` instead.
        """
        atexit.unregister(self.stop)
        procs, self._procs = list(self._procs.values()), {}
        if not procs:
            stop_recorded(self.workdir)
            return
        for proc in reversed(procs):  # kube-apiserver first (it hangs if etcd goes first)
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(FileNotFoundError):
            (self.workdir / "pids").unlink()

    def detach(self) -> None:
        """Leave the processes running after this Python process exits (``down`` stops them)."""
        atexit.unregister(self.stop)
        for proc in self._procs.values():
            proc.returncode = 0  # no "still running" ResourceWarning when the object dies
        self._procs = {}


def _up(workdir: Path, detach: bool, timeout: float, assets: Path | None) -> int:
    plane = LocalControlPlane(workdir=workdir, assets_dir=assets)
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        if not ready:  # still starting: unwind start(), which stops what it started
            raise KeyboardInterrupt

    ready = False

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        plane.start(timeout=timeout)
        ready = True
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(
        f"control plane ready in {time.monotonic() - started:.1f}s at {plane.server} "
        f"(logs in {plane.workdir})",
        file=sys.stderr,
    )
    print(f"export KUBECONFIG={plane.kubeconfig}", flush=True)
    if detach:
        plane.detach()
        down = f"python -m jobgate.testing.controlplane down --dir {plane.workdir}"
        print(f"stop it with: {down}", file=sys.stderr)
        return 0
    print("running; Ctrl-C stops it", file=sys.stderr, flush=True)
    try:
        while not stopping:
            dead = [name for name, p in plane._procs.items() if p.poll() is not None]
            if dead:
                print(f"error: {dead[0]} exited:\n{plane.log_tails()}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    finally:
        plane.stop()
    print("stopped", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line: ``up``, ``down``, ``assets``."""
    parser = argparse.ArgumentParser(
        prog="python -m jobgate.testing.controlplane",
        description="A local etcd + kube-apiserver on 127.0.0.1 (no kubelet).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start etcd and kube-apiserver; print the KUBECONFIG line")
    up.add_argument("--dir", type=Path, required=True, help="work directory (created)")
    up.add_argument("--detach", action="store_true", help="return once ready, leave running")
    up.add_argument("--timeout", type=float, default=60, help="seconds to wait for /readyz")
    up.add_argument("--assets", type=Path, help="folder with etcd and kube-apiserver")
    down = sub.add_parser("down", help="stop what 'up' started in DIR")
    down.add_argument("--dir", type=Path, required=True)
    sub.add_parser("assets", help="print the binaries folder (obtaining them if needed)")
    args = parser.parse_args(argv)

    if args.command == "assets":
        try:
            print(find_assets())
        except ControlPlaneError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "down":
        print(f"stopped {stop_recorded(args.dir)} process(es)", file=sys.stderr)
        return 0
    return _up(args.dir, args.detach, args.timeout, args.assets)


if __name__ == "__main__":
    sys.exit(main())
