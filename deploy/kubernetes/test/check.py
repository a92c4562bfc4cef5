#!/usr/bin/env python3
"""Checks deploy/kubernetes: every overlay renders (`kubectl kustomize`), every rendered object
validates against the Kubernetes schemas (kubernetes-validate, strict: unknown fields fail; the
ServiceMonitor against servicemonitor.schema.json), every SHOAL_* name is an env twin the
`shoal` binary lists, the member lists name exactly the pods the replica counts create, the shim
pod's `shoal node install` (init container) and preStop `shoal node uninstall` leave a host
tree as they found it, and each service's command and env names are the ones
compose/docker-compose.yml runs.

Needs kubectl (KUBECTL to pick one), PyYAML, jsonschema, kubernetes-validate and a shoal binary
(SHOAL_BIN, default target/debug/shoal). A missing one is a failure, never a skip.
Run: python3 deploy/kubernetes/test/check.py   (from anywhere; exit 1 on any failure)
"""

import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
KUBE = os.path.join(ROOT, "deploy", "kubernetes")
# The schema version the manifests are checked against (kubernetes-validate ships it).
K8S_VERSION = os.environ.get("SHOAL_K8S_VERSION", "1.30.0")
# compose service -> (kind, name, container) in the rendered manifests.
SERVICES = {
    "tracker": ("StatefulSet", "shoal-tracker", "tracker"),
    "seeder": ("StatefulSet", "shoal-seeder", "seeder"),
    "host1": ("DaemonSet", "shoal-shim", "shim"),
    "host2": ("DaemonSet", "shoal-shim", "shim"),
    "host3": ("DaemonSet", "shoal-shim", "shim"),
}
# Set only in Kubernetes, from the downward API, to build each pod's own URL.
K8S_ONLY_ENV = {"POD_NAME", "POD_NAMESPACE"}

failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL {message}")


def need(module):
    try:
        return __import__(module)
    except ImportError:
        sys.exit(f"check.py: the Python module {module} is missing (.ci/install-deps installs it)")


yaml = need("yaml")
jsonschema = need("jsonschema")
kubernetes_validate = need("kubernetes_validate")


def render(overlay):
    kubectl = os.environ.get("KUBECTL", "kubectl")
    try:
        out = subprocess.run([kubectl, "kustomize", os.path.join(KUBE, "overlays", overlay)],
                             check=True, capture_output=True, text=True)
    except FileNotFoundError:
        sys.exit(f"check.py: {kubectl} not found (.ci/install-deps installs Debian's kubernetes-client)")
    except subprocess.CalledProcessError as e:
        sys.exit(f"check.py: kubectl kustomize overlays/{overlay} failed:\n{e.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def env_twins(shoal, command):
    out = subprocess.run([shoal, *command, "--help"], check=True, capture_output=True, text=True).stdout
    return set(re.findall(r"\[env: ([A-Z0-9_]+)", out))


def find(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    if len(found) != 1:
        sys.exit(f"check.py: expected one {kind} {name}, found {len(found)}")
    return found[0]


def container(workload, name, init=False):
    spec = workload["spec"]["template"]["spec"]
    for c in spec.get("initContainers" if init else "containers", []):
        if c["name"] == name:
            return c
    sys.exit(f"check.py: {workload['metadata']['name']} has no container {name}")


def config_map(docs, ref_name):
    return next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == ref_name)


def env_values(docs, c, pod_name, namespace):
    """A container's env as the kubelet would set it for pod `pod_name`."""
    values = {"POD_NAME": pod_name, "POD_NAMESPACE": namespace}
    out = {}
    for e in c.get("env", []):
        if "value" in e:
            value = re.sub(r"\$\(([A-Z_]+)\)", lambda m: values.get(m.group(1), m.group(0)), e["value"])
        elif "configMapKeyRef" in e["valueFrom"]:
            ref = e["valueFrom"]["configMapKeyRef"]
            data = config_map(docs, ref["name"]).get("data", {})
            if ref["key"] not in data:
                fail(f"{c['name']}: {e['name']} names key {ref['key']}, which {ref['name']} lacks")
            value = data.get(ref["key"], "")
        else:
            value = values.get(e["name"], "")
        out[e["name"]] = value
        values[e["name"]] = value
    return out


def validate(overlay, docs):
    with open(os.path.join(HERE, "servicemonitor.schema.json")) as f:
        monitor_schema = json.load(f)
    for d in docs:
        what = f"overlays/{overlay}: {d['kind']} {d['metadata']['name']}"
        try:
            if d["kind"] == "ServiceMonitor":
                jsonschema.validate(d, monitor_schema)
            else:
                kubernetes_validate.validate(d, K8S_VERSION, strict=True)
        except Exception as e:  # each library's own validation errors
            fail(f"{what}: {type(e).__name__}: {str(e)[:400]}")


def check_twins(overlay, docs, shoal):
    """Every SHOAL_* name set in a container is an env twin of the command it runs."""
    for kind, name, cname, init in [("StatefulSet", "shoal-tracker", "tracker", False),
                                    ("StatefulSet", "shoal-seeder", "seeder", False),
                                    ("DaemonSet", "shoal-shim", "shim", False),
                                    ("DaemonSet", "shoal-shim", "node-install", True)]:
        c = container(find(docs, kind, name), cname, init)
        twins = env_twins(shoal, c["args"])
        for e in c.get("env", []):
            if e["name"].startswith("SHOAL_") and e["name"] not in twins:
                fail(f"overlays/{overlay}: {name}/{cname} sets {e['name']}, not an env twin of `shoal {' '.join(c['args'])}`")
    shim = container(find(docs, "DaemonSet", "shoal-shim"), "shim")
    pre_stop = shim["lifecycle"]["preStop"]["exec"]["command"]
    if pre_stop[:3] != ["shoal", "node", "uninstall"]:
        fail(f"overlays/{overlay}: the shim's preStop is not `shoal node uninstall`: {pre_stop}")
    # The hook's flags must parse: `--help` after them fails unless each flag exists.
    probe = subprocess.run([shoal, *pre_stop[1:], "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        fail(f"overlays/{overlay}: the preStop command does not parse: {probe.stderr.strip()}")


def check_members(overlay, docs):
    """The static member lists name exactly the pods the StatefulSets create, and each pod's own
    URL (--self-url, --public-url) is one of them."""
    for sts, cname, members_env, self_env in [("shoal-tracker", "tracker", "SHOAL_TRACKER_MEMBERS", "SHOAL_TRACKER_SELF_URL"),
                                              ("shoal-seeder", "seeder", "SHOAL_SEEDER_MEMBERS", "SHOAL_SEEDER_PUBLIC_URL")]:
        workload = find(docs, "StatefulSet", sts)
        namespace = workload["metadata"].get("namespace", "default")
        replicas = workload["spec"]["replicas"]
        own = []
        for i in range(replicas):
            env = env_values(docs, container(workload, cname), f"{sts}-{i}", namespace)
            members = env[members_env].split(",")
            own.append(env[self_env])
            if env[self_env] not in members:
                fail(f"overlays/{overlay}: pod {sts}-{i}'s {self_env} {env[self_env]} is not in {members_env} {members}")
        if sorted(own) != sorted(members):
            fail(f"overlays/{overlay}: {members_env} {members} is not the {replicas} pods of {sts}: {own}")
        if sts == "shoal-seeder":
            ring = int(env["SHOAL_SEEDER_REPLICAS"])
            if not 1 <= ring <= len(members):
                fail(f"overlays/{overlay}: SHOAL_SEEDER_REPLICAS {ring} with {len(members)} members")
            seeders = members
        else:
            trackers = members
    for node in ["node-a"]:
        shim = env_values(docs, container(find(docs, "DaemonSet", "shoal-shim"), "shim"), node, "")
        if shim["SHOAL_SHIM_SEEDER"].split(",") != seeders:
            fail(f"overlays/{overlay}: the shims' SHOAL_SHIM_SEEDER {shim['SHOAL_SHIM_SEEDER']} is not the seeders {seeders}")
        if shim["SHOAL_SHIM_TRACKERS"].split(",") != trackers:
            fail(f"overlays/{overlay}: the shims' SHOAL_SHIM_TRACKERS is not the trackers {trackers}")
        if shim["SHOAL_SHIM_LISTEN"].split(":")[0] != "127.0.0.1":
            fail(f"overlays/{overlay}: the shim does not listen on the node's loopback")


def under_mounts(c, path):
    return any(path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")
               for m in c.get("volumeMounts", []))


def check_node_lifecycle(overlay, docs, shoal):
    """The init container's `shoal node install` and the preStop `shoal node uninstall`, run
    as the pod runs them (its env and flags, /host/ moved to a temporary tree, no containerd on
    PATH, as in the image), on a host tree with a registry's own hosts.toml: install writes the
    shim's entry, a restart's second install changes nothing, uninstall restores every file."""
    import hashlib
    import tempfile
    shim_ds = find(docs, "DaemonSet", "shoal-shim")
    init, shim = container(shim_ds, "node-install", init=True), container(shim_ds, "shim")
    env = env_values(docs, init, "node-a", "")
    shim_env = env_values(docs, shim, "node-a", "")
    if env["SHOAL_NODE_SHIM_URL"] != "http://" + shim_env["SHOAL_SHIM_LISTEN"]:
        fail(f"overlays/{overlay}: node install points containerd at {env['SHOAL_NODE_SHIM_URL']}, "
             f"the shim listens on {shim_env['SHOAL_SHIM_LISTEN']}")
    pre_stop = shim["lifecycle"]["preStop"]["exec"]["command"]
    host_paths = [v for v in env.values() if v.startswith("/host/")] + [a for a in pre_stop if a.startswith("/host/")]
    for path in host_paths:
        for c, role in [(init, "init container"), (shim, "shim (preStop)")]:
            if not under_mounts(c, path):
                fail(f"overlays/{overlay}: {path} is on no volume of the {role}")
    with tempfile.TemporaryDirectory() as tmp:
        def moved(value):
            return tmp + value[len("/host"):] if value.startswith("/host/") else value
        own = os.path.join(tmp, "etc/containerd/certs.d/docker.io/hosts.toml")
        os.makedirs(os.path.dirname(own))
        with open(own, "w") as f:
            f.write('server = "https://registry-1.docker.io"\n\n[host."https://mirror.example"]\n  capabilities = ["pull"]\n')
        with open(os.path.join(tmp, "etc/containerd/config.toml"), "w") as f:
            f.write('version = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n')

        def tree():
            out = {}
            for d, _, files in os.walk(os.path.join(tmp, "etc")):
                for name in files:
                    with open(os.path.join(d, name), "rb") as f:
                        out[os.path.relpath(os.path.join(d, name), tmp)] = hashlib.sha256(f.read()).hexdigest()
            return out
        before = tree()
        pod_env = {"PATH": "/nonexistent", **{k: moved(v) for k, v in env.items()}}
        for attempt in ["install", "a restart's install"]:
            run = subprocess.run([shoal, *init["args"]], env=pod_env, capture_output=True, text=True)
            if run.returncode != 0:
                fail(f"overlays/{overlay}: the init container's {attempt} failed: {run.stderr.strip()}")
        if "nothing changed" not in run.stdout + run.stderr:
            fail(f"overlays/{overlay}: a second install was not a no-op: {run.stdout}{run.stderr}")
        default = os.path.join(tmp, "etc/containerd/certs.d/_default/hosts.toml")
        written = open(default).read() if os.path.exists(default) else ""
        if f'[host."{env["SHOAL_NODE_SHIM_URL"]}"]' not in written:
            fail(f"overlays/{overlay}: install wrote no shim entry in _default/hosts.toml: {written!r}")
        run = subprocess.run([shoal, *[moved(a) for a in pre_stop[1:]]], env={"PATH": "/nonexistent"},
                             capture_output=True, text=True)
        if run.returncode != 0:
            fail(f"overlays/{overlay}: the preStop uninstall failed: {run.stderr.strip()}")
        if tree() != before:
            fail(f"overlays/{overlay}: uninstall did not restore the host's files: {sorted(before)} -> {sorted(tree())}")


def check_compose(overlay, docs):
    """Each compose service runs the command and the env names its Kubernetes twin runs."""
    with open(os.path.join(ROOT, "compose", "docker-compose.yml")) as f:
        compose = yaml.safe_load(f)["services"]
    for service, (kind, name, cname) in SERVICES.items():
        c = container(find(docs, kind, name), cname)
        if "command" in c:
            fail(f"overlays/{overlay}: {name}/{cname} overrides the image's entrypoint (compose does not)")
        if c["args"] != compose[service]["command"]:
            fail(f"overlays/{overlay}: {name}/{cname} runs {c['args']}, compose's {service} runs {compose[service]['command']}")
        k8s_env = {e["name"] for e in c.get("env", [])} - K8S_ONLY_ENV
        compose_env = set(compose[service].get("environment", {}))
        if k8s_env != compose_env:
            fail(f"overlays/{overlay}: {name}/{cname} env names differ from compose's {service}: "
                 f"only in Kubernetes {sorted(k8s_env - compose_env)}, only in compose {sorted(compose_env - k8s_env)}")


def main():
    shoal = os.environ.get("SHOAL_BIN", os.path.join(ROOT, "target", "debug", "shoal"))
    if not os.access(shoal, os.X_OK):
        sys.exit(f"check.py: no shoal binary at {shoal} (cargo build --bin shoal, or set SHOAL_BIN)")
    overlays = sorted(os.listdir(os.path.join(KUBE, "overlays")))
    if not overlays:
        sys.exit("check.py: no overlays")
    objects = 0
    for overlay in overlays:
        docs = render(overlay)
        objects += len(docs)
        kinds = sorted({d["kind"] for d in docs})
        for required in ["ConfigMap", "DaemonSet", "NetworkPolicy", "Service", "ServiceMonitor", "StatefulSet"]:
            if required not in kinds:
                fail(f"overlays/{overlay}: renders no {required}")
        validate(overlay, docs)
        check_twins(overlay, docs, shoal)
        check_members(overlay, docs)
        check_node_lifecycle(overlay, docs, shoal)
        check_compose(overlay, docs)
        print(f"overlays/{overlay}: {len(docs)} objects ({', '.join(kinds)}) checked")
    if failures:
        print(f"check.py: {len(failures)} failure(s)")
        sys.exit(1)
    print(f"check.py: {len(overlays)} overlays, {objects} objects: schemas, env twins, members, node install/uninstall, compose agree")


if __name__ == "__main__":
    main()
