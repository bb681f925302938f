"""What the Helm chart renders (with the project's pinned helm, `make helm`), read as an operator would.

`make helm-check` lints the chart and validates every rendered resource against Kubernetes'
schemas; these tests check the behaviour those schemas cannot: probes, drain timing, shards.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / ".tools/helm"
CHART = ROOT / "deploy/helm/bytemark-ticket-cache"
PRODUCTION = ROOT / "deploy/helm/examples/production.yaml"
RULES = CHART / "files/ticket-cache-rules.yml"
KUBE_VERSION = "1.29.0"
SERVICE = "bytemark.ticketcache.v1.TicketCacheService"


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM.exists(), f"{HELM} is missing: run `make helm`"
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=60)


def render(*args: str) -> dict[str, dict[str, Any]]:
    done = helm("template", "tc", str(CHART), "--kube-version", KUBE_VERSION, *args)
    assert done.returncode == 0, done.stderr
    docs = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return {f"{doc['kind']}/{doc['metadata']['name']}": doc for doc in docs}


@pytest.fixture(scope="module")
def default() -> dict[str, dict[str, Any]]:
    return render()


@pytest.fixture(scope="module")
def production() -> dict[str, dict[str, Any]]:
    return render("-f", str(PRODUCTION))


DEPLOYMENT = "Deployment/tc-bytemark-ticket-cache"


def pod_annotations(resources: dict[str, dict[str, Any]]) -> dict[str, str]:
    return dict(resources[DEPLOYMENT]["spec"]["template"]["metadata"].get("annotations", {}))


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}


def pod_spec(resource: dict[str, Any]) -> dict[str, Any]:
    spec = resource["spec"]
    if resource["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"] if "template" in spec else spec


def test_defaults_render_the_server_its_service_and_the_hourly_refresh(default: dict[str, Any]) -> None:
    assert sorted(default) == [
        "CronJob/tc-bytemark-ticket-cache-refresh",
        "Deployment/tc-bytemark-ticket-cache",
        "Job/tc-bytemark-ticket-cache-migrate",
        "NetworkPolicy/tc-bytemark-ticket-cache",
        "Pod/tc-bytemark-ticket-cache-test-connection",
        "PodDisruptionBudget/tc-bytemark-ticket-cache",
        "Secret/tc-bytemark-ticket-cache-env",
        "Service/tc-bytemark-ticket-cache",
    ]
    for resource in default.values():
        labels = resource["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "bytemark-ticket-cache"
        assert labels["app.kubernetes.io/instance"] == "tc"
        assert {"app.kubernetes.io/version", "app.kubernetes.io/managed-by"} <= set(labels)


def test_two_replicas_probe_grpc_health_and_run_locked_down(default: dict[str, Any]) -> None:
    deployment = default["Deployment/tc-bytemark-ticket-cache"]
    spec = pod_spec(deployment)
    (server,) = spec["containers"]

    assert deployment["spec"]["replicas"] == 2
    assert server["args"] == ["serve"]
    assert server["livenessProbe"]["grpc"] == {"port": 50051}
    assert server["readinessProbe"]["grpc"] == {"port": 50051, "service": SERVICE}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    assert server["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert spec["automountServiceAccountToken"] is False
    assert server["resources"]["requests"] and server["resources"]["limits"]
    assert {c["topologyKey"] for c in spec["topologySpreadConstraints"]} >= {"kubernetes.io/hostname"}
    assert server["envFrom"] == [{"secretRef": {"name": "tc-bytemark-ticket-cache-env"}}]


def test_the_kubelet_waits_for_the_preStop_sleep_and_the_whole_drain(default: dict[str, Any]) -> None:
    spec = pod_spec(default["Deployment/tc-bytemark-ticket-cache"])
    (server,) = spec["containers"]
    grace = float(env_of(server)["GRPC_SHUTDOWN_GRACE_SECONDS"])
    sleep = float(server["lifecycle"]["preStop"]["exec"]["command"][1])

    assert spec["terminationGracePeriodSeconds"] > sleep + grace


def test_a_named_tokens_secret_is_mounted_as_a_directory_and_named_by_grpc_auth_tokens_file() -> None:
    rendered = render("--set", "grpc.authTokensSecret=tc-scoped-tokens", "--set", "grpc.authTokensKey=file")
    spec = pod_spec(rendered[DEPLOYMENT])
    (server,) = spec["containers"]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    mounts = {mount["name"]: mount for mount in server["volumeMounts"]}

    assert volumes["auth-tokens"]["secret"] == {
        "secretName": "tc-scoped-tokens",
        "items": [{"key": "file", "path": "tokens"}],
    }
    assert "tmp" in volumes and "tmp" in mounts  # the common volume stays
    # a directory mount (no subPath): the kubelet swaps a rotated Secret's content into it
    assert mounts["auth-tokens"] == {
        "name": "auth-tokens",
        "mountPath": "/etc/ticket-cache/auth",
        "readOnly": True,
    }
    assert env_of(server)["GRPC_AUTH_TOKENS_FILE"] == "/etc/ticket-cache/auth/tokens"
    jobs = [pod_spec(r) for name, r in rendered.items() if name.startswith(("Job/", "CronJob/"))]
    assert jobs and all("auth-tokens" not in {v["name"] for v in job["volumes"]} for job in jobs)


def test_without_a_tokens_secret_nothing_is_mounted(default: dict[str, Any]) -> None:
    (server,) = pod_spec(default[DEPLOYMENT])["containers"]

    assert "GRPC_AUTH_TOKENS_FILE" not in env_of(server)
    assert [mount["name"] for mount in server["volumeMounts"]] == ["tmp"]


def test_the_service_is_headless_for_client_side_round_robin(default: dict[str, Any]) -> None:
    service = default["Service/tc-bytemark-ticket-cache"]

    assert service["spec"]["clusterIP"] == "None"
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"grpc": 50051, "metrics": 9090}


def test_the_network_policy_admits_only_the_grpc_and_metrics_ports(default: dict[str, Any]) -> None:
    policy = default["NetworkPolicy/tc-bytemark-ticket-cache"]
    (rule,) = policy["spec"]["ingress"]

    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert [p["port"] for p in rule["ports"]] == ["grpc", "metrics"]


def test_the_http_port_is_off_by_default_and_exposed_everywhere_when_enabled(default: dict[str, Any]) -> None:
    server = pod_spec(default[DEPLOYMENT])["containers"][0]
    assert "HTTP_LISTEN" not in env_of(server)

    enabled = render("--set", "http.enabled=true", "--set", "http.port=8081")
    server = pod_spec(enabled[DEPLOYMENT])["containers"][0]
    service = enabled["Service/tc-bytemark-ticket-cache"]
    (rule,) = enabled["NetworkPolicy/tc-bytemark-ticket-cache"]["spec"]["ingress"]

    assert env_of(server)["HTTP_LISTEN"] == "0.0.0.0:8081"
    assert {"name": "http", "containerPort": 8081, "protocol": "TCP"} in server["ports"]
    http = next(p for p in service["spec"]["ports"] if p["name"] == "http")
    assert (http["port"], http["targetPort"], http["appProtocol"]) == (8081, "http", "http")
    assert [p["port"] for p in rule["ports"]] == ["grpc", "http", "metrics"]


def test_the_hourly_refresh_is_an_indexed_job_with_one_pod_per_shard(default: dict[str, Any]) -> None:
    cron = default["CronJob/tc-bytemark-ticket-cache-refresh"]
    job = cron["spec"]["jobTemplate"]["spec"]
    (container,) = job["template"]["spec"]["containers"]
    args = container["args"]

    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["timeZone"] == "Etc/UTC" and cron["spec"]["startingDeadlineSeconds"] > 0
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"] == 3
    assert job["backoffLimitPerIndex"] >= 1
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert args[:2] == ["run", "refresh-stale"]
    assert args[args.index("--shard-count") + 1] == "3"
    assert "--shard-index" not in args  # each pod takes JOB_COMPLETION_INDEX


def test_migrate_runs_as_a_hook_after_the_secret_it_reads(default: dict[str, Any]) -> None:
    migrate = default["Job/tc-bytemark-ticket-cache-migrate"]
    secret = default["Secret/tc-bytemark-ticket-cache-env"]
    hook, secret_hook = migrate["metadata"]["annotations"], secret["metadata"]["annotations"]

    assert pod_spec(migrate)["containers"][0]["args"] == ["migrate"]
    assert hook["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert secret_hook["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(secret_hook["helm.sh/hook-weight"]) < int(hook["helm.sh/hook-weight"])


def test_the_helm_test_pod_checks_grpc_health_through_the_service(default: dict[str, Any]) -> None:
    pod = default["Pod/tc-bytemark-ticket-cache-test-connection"]

    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert "HealthStub" in pod["spec"]["containers"][0]["args"][0]


def test_production_scales_by_cpu_uses_its_own_secret_and_bootstraps(production: dict[str, Any]) -> None:
    deployment = production["Deployment/tc-bytemark-ticket-cache"]
    hpa = production["HorizontalPodAutoscaler/tc-bytemark-ticket-cache"]
    (bootstrap,) = [r for name, r in production.items() if "-bootstrap-" in name]
    cron_job = production["CronJob/tc-bytemark-ticket-cache-refresh"]["spec"]["jobTemplate"]["spec"]

    assert "replicas" not in deployment["spec"]  # the HPA owns the count
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert not [name for name in production if name.startswith("Secret/")]
    (server,) = pod_spec(deployment)["containers"]
    assert server["envFrom"] == [{"secretRef": {"name": "bytemark-ticket-cache-env"}}]
    assert pod_spec(bootstrap)["containers"][0]["args"] == ["run", "bootstrap"]
    assert cron_job["completions"] == cron_job["parallelism"] == 6


def test_prometheus_scraping_follows_the_metrics_scrape_value(default: dict[str, Any]) -> None:
    annotations = pod_annotations(default)
    monitored = render("--set", "metrics.scrape=serviceMonitor")
    unscraped = render("--set", "metrics.scrape=none")

    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == "9090"
    assert "ServiceMonitor/tc-bytemark-ticket-cache" in monitored
    assert "prometheus.io/scrape" not in pod_annotations(unscraped)


def test_production_ships_the_rules_file_as_a_prometheus_rule(production: dict[str, Any]) -> None:
    rule = production["PrometheusRule/tc-bytemark-ticket-cache"]
    rules_file = yaml.safe_load(RULES.read_text())

    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"  # the ruleSelector's label
    assert rule["spec"] == {"groups": rules_file["groups"]}


def test_the_rendered_rule_has_the_shape_the_prometheus_operator_accepts(production: dict[str, Any]) -> None:
    # kubernetes-validate has no schema for this CRD: the fields of its RuleGroup and Rule, by hand.
    groups = production["PrometheusRule/tc-bytemark-ticket-cache"]["spec"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]

    assert groups and all(set(group) == {"name", "rules"} and group["rules"] for group in groups)
    assert all(set(rule) <= {"record", "alert", "expr", "for", "labels", "annotations"} for rule in rules)
    assert all(("record" in rule) != ("alert" in rule) and isinstance(rule["expr"], str) for rule in rules)


def test_the_prometheus_rule_is_off_by_default(default: dict[str, Any]) -> None:
    assert not [name for name in default if name.startswith("PrometheusRule/")]
    assert "PrometheusRule/tc-bytemark-ticket-cache" in render("--set", "prometheusRule.enabled=true")


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("refresh.shards=0", "/refresh/shards"),
        ("grpc.shutdownGraceSeconds=0", "/grpc/shutdownGraceSeconds"),
        ("grpc.authTokensSecret=Not_A_Name", "/grpc/authTokensSecret"),
        ("http.port=0", "/http/port"),
    ],
)
def test_the_values_schema_rejects_a_bad_value_naming_it(setting: str, named: str) -> None:
    done = helm("template", "tc", str(CHART), "--kube-version", KUBE_VERSION, "--set", setting)

    assert done.returncode != 0
    assert named in done.stderr


def test_the_jobs_push_their_run_summary_only_when_a_pushgateway_is_set(default: dict[str, Any]) -> None:
    pushing = render(
        "--set", "pushgateway.url=http://pushgateway.monitoring:9091", "--set", "bootstrap.enabled=true"
    )
    refresh = "CronJob/tc-bytemark-ticket-cache-refresh"
    (bootstrap,) = [resource for name, resource in pushing.items() if "-bootstrap-" in name]

    assert "PUSHGATEWAY_URL" not in env_of(pod_spec(default[refresh])["containers"][0])
    for job in (pushing[refresh], bootstrap):
        assert (
            env_of(pod_spec(job)["containers"][0])["PUSHGATEWAY_URL"] == "http://pushgateway.monitoring:9091"
        )
    assert "PUSHGATEWAY_URL" not in env_of(
        pod_spec(pushing[DEPLOYMENT])["containers"][0]
    )  # serve pushes nothing


def test_production_traces_the_server_and_every_job_to_its_collector(production: dict[str, Any]) -> None:
    refresh = "CronJob/tc-bytemark-ticket-cache-refresh"
    pods = [production[DEPLOYMENT], production[refresh]]
    pods += [resource for name, resource in production.items() if "-bootstrap-" in name or "-migrate" in name]
    collector = "http://otel-collector.observability:4317"
    for resource in pods:
        env = env_of(pod_spec(resource)["containers"][0])
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == collector, resource["kind"]
        sampling = (env["OTEL_TRACES_SAMPLER"], env["OTEL_TRACES_SAMPLER_ARG"])
        assert sampling == ("parentbased_traceidratio", "0.1")


def test_the_grafana_dashboard_is_an_opt_in_config_map_for_the_sidecar(default: dict[str, Any]) -> None:
    dashboard = CHART / "files/ticket-cache-dashboard.json"
    shipped = render(
        "--set",
        "grafanaDashboard.enabled=true",
        "--set",
        "grafanaDashboard.annotations.grafana_folder=Transit",
    )
    config_map = shipped["ConfigMap/tc-bytemark-ticket-cache-dashboard"]

    assert not [name for name in default if name.endswith("-dashboard")]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Transit"}
    assert json.loads(config_map["data"]["bytemark-ticket-cache.json"]) == json.loads(dashboard.read_text())
