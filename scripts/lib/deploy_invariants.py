"""Invariants of Liner's rendered Kubernetes manifests (`kubectl kustomize` output).

Schema validation says a manifest is well formed; these say it is still the deployment
the issue asked for, so that a later edit cannot silently drop them: Pod Security
"restricted" on every container, requests and limits, probes, a PodDisruptionBudget per
Deployment, autoscaling where required, a grace period longer than drain + in-flight
work + the longest upstream timeout, hashing threads sized by the CPU limit, tagged
images, a default-deny network policy. Usage: deploy_invariants.py RENDERED.yaml...
Prints one line per broken invariant and exits 1 if there is any.
"""

import sys

import yaml

# A service finishes in-flight work within this long after its drain (liner-shared).
IN_FLIGHT_SECS = 15
# The gateway's default upstream timeout when LINER_UPSTREAM_TIMEOUT_SECS is unset.
DEFAULT_UPSTREAM_TIMEOUT_SECS = 30
# Deployments that must scale horizontally.
AUTOSCALED = {"liner-gateway", "liner-review", "liner-forum"}
# Every Deployment the system needs.
REQUIRED = AUTOSCALED | {"liner-catalog", "liner-discovery"}


def matches(selector, labels):
    """A label selector (matchLabels only, as ours are) matches these labels."""
    wanted = (selector or {}).get("matchLabels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def config_env(pod, configmaps):
    """The environment a pod's first container gets from its ConfigMaps and env."""
    env = {}
    container = pod["containers"][0]
    for source in container.get("envFrom") or []:
        name = (source.get("configMapRef") or {}).get("name")
        env.update((configmaps.get(name) or {}).get("data") or {})
    for var in container.get("env") or []:
        if "value" in var:
            env[var["name"]] = var["value"]
    return env


def longest_route_timeout(env):
    secs = int(env.get("LINER_UPSTREAM_TIMEOUT_SECS", DEFAULT_UPSTREAM_TIMEOUT_SECS))
    for item in filter(None, env.get("LINER_ROUTE_TIMEOUTS", "").split(",")):
        secs = max(secs, -(-int(item.split("=", 1)[1]) // 1000))
    return secs


def check_container(where, c, pod_sc, main, fail):
    sc = c.get("securityContext") or {}
    if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
        fail(f"{where}: runAsNonRoot is not set")
    if sc.get("runAsUser", pod_sc.get("runAsUser")) in (None, 0):
        fail(f"{where}: no non-zero runAsUser")
    if sc.get("readOnlyRootFilesystem") is not True:
        fail(f"{where}: readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        fail(f"{where}: allowPrivilegeEscalation is not false")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        fail(f"{where}: capabilities do not drop ALL")
    if ((sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")) != "RuntimeDefault":
        fail(f"{where}: seccomp profile is not RuntimeDefault")
    resources = c.get("resources") or {}
    for kind in ("requests", "limits"):
        for res in ("cpu", "memory"):
            if res not in (resources.get(kind) or {}):
                fail(f"{where}: no {res} {kind[:-1]}")
    image = c.get("image", "")
    tag = image.rsplit("/", 1)[-1].partition(":")[2].split("@")[0]
    if "@sha256:" not in image and tag in ("", "latest"):
        fail(f"{where}: image {image!r} has no tag or is :latest")
    if main:
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe not in c:
                fail(f"{where}: no {probe}")


def check(docs, source):
    failures = []
    fail = failures.append
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    namespaces = by_kind.get("Namespace", [])
    if len(namespaces) != 1:
        fail(f"expected one Namespace, found {len(namespaces)}")
    else:
        ns = namespaces[0]
        if (ns["metadata"].get("labels") or {}).get("pod-security.kubernetes.io/enforce") != "restricted":
            fail(f"namespace {ns['metadata']['name']}: Pod Security 'restricted' is not enforced")
        for d in docs:
            if d["kind"] != "Namespace" and d["metadata"].get("namespace") != ns["metadata"]["name"]:
                fail(f"{d['kind']} {d['metadata']['name']}: not in namespace {ns['metadata']['name']}")
    policies = by_kind.get("NetworkPolicy", [])
    if not any(p["spec"].get("podSelector") == {} and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
               and not p["spec"].get("ingress") and not p["spec"].get("egress") for p in policies):
        fail("no default-deny NetworkPolicy (ingress and egress)")

    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    for missing in sorted(REQUIRED - deployments.keys()):
        fail(f"Deployment {missing} is missing")
    for name, d in deployments.items():
        template = d["spec"]["template"]
        labels = template["metadata"].get("labels") or {}
        pod = template["spec"]
        pod_sc = pod.get("securityContext") or {}
        if pod.get("automountServiceAccountToken") is not False:
            fail(f"{name}: automountServiceAccountToken is not false")
        if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
            fail(f"{name}: shares a host namespace")
        if not pod.get("topologySpreadConstraints"):
            fail(f"{name}: no topologySpreadConstraints")
        for c in pod.get("initContainers") or []:
            check_container(f"{name}/{c['name']} (init)", c, pod_sc, False, fail)
        for c in pod["containers"]:
            check_container(f"{name}/{c['name']}", c, pod_sc, True, fail)
        env = config_env(pod, configmaps)
        if "LINER_DRAIN_SECS" not in env:
            fail(f"{name}: LINER_DRAIN_SECS is not set")
        needed = int(env.get("LINER_DRAIN_SECS", 0)) + IN_FLIGHT_SECS + longest_route_timeout(env)
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if grace <= needed:
            fail(f"{name}: terminationGracePeriodSeconds {grace} is not above drain + {IN_FLIGHT_SECS} s + longest route timeout = {needed}")
        if not any(matches(p["spec"].get("selector"), labels) for p in by_kind.get("PodDisruptionBudget", [])):
            fail(f"{name}: no PodDisruptionBudget selects its pods")
        if not any(matches({"matchLabels": s["spec"].get("selector")}, labels) for s in by_kind.get("Service", [])):
            fail(f"{name}: no Service selects its pods")
        if not any(matches(p["spec"].get("podSelector"), labels) for p in policies):
            fail(f"{name}: no NetworkPolicy names its pods")
        if name in AUTOSCALED:
            hpas = [h for h in by_kind.get("HorizontalPodAutoscaler", [])
                    if h["apiVersion"] == "autoscaling/v2" and h["spec"]["scaleTargetRef"].get("name") == name]
            if not hpas:
                fail(f"{name}: no autoscaling/v2 HorizontalPodAutoscaler")
            elif not any(m.get("type") == "Resource" and m["resource"]["name"] == "cpu" for m in hpas[0]["spec"]["metrics"]):
                fail(f"{name}: its HorizontalPodAutoscaler has no CPU metric")
    review = deployments.get("liner-review")
    if review:
        c = review["spec"]["template"]["spec"]["containers"][0]
        var = next((v for v in c.get("env") or [] if v["name"] == "LINER_HASH_THREADS"), None)
        ref = ((var or {}).get("valueFrom") or {}).get("resourceFieldRef") or {}
        if not var or ("value" not in var and ref.get("resource") != "limits.cpu"):
            fail("liner-review: LINER_HASH_THREADS is not sized from the CPU limit")
    return [f"{source}: {f}" for f in failures]


def main(paths):
    failures = []
    for path in paths:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        failures += check(docs, path)
    for line in failures:
        print(line)
    print(f"deploy invariants: {len(paths)} rendered overlays, {len(failures)} broken")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
