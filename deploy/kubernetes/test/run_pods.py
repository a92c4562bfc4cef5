#!/usr/bin/env python3
"""Runs the containers of deploy/kubernetes's pods (overlays/single) in Docker, as the kubelet
would run them as far as one host can: each container's args and env (downward API and
ConfigMap keys resolved, pod names as the StatefulSet gives them), its securityContext as
flags (runAsUser/runAsGroup -> --user, readOnlyRootFilesystem -> --read-only, dropped
capabilities -> --cap-drop, allowPrivilegeEscalation: false -> no-new-privileges), emptyDir as
tmpfs, a PVC as a directory owned by the pod's fsGroup, hostPaths as directories of a fake host.
Checks: the tracker, seeder and shim start and answer their readiness probes; the shim's init
container installs into the fake host's containerd tree; its preStop command, run in the shim
container, restores that tree byte for byte.

Usage: run_pods.py IMAGE   (DOCKER_HOST's daemon must have IMAGE: compose/ci.sh runs it with
the lab's shoal image, built offline). No network: containers run with --network none.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check import container, env_values, find, render  # noqa: E402

OVERLAY = "single"


def docker(*args, check=True):
    out = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and out.returncode != 0:
        sys.exit(f"run_pods.py: docker {' '.join(args[:3])}... failed: {out.stderr.strip()}")
    return out


def run_flags(docs, pod, c, pod_name, namespace, volumes):
    """`docker run` flags for container `c` of `pod` (a workload's template spec)."""
    spec = pod["spec"]["template"]["spec"]
    pod_sec, sec = spec.get("securityContext", {}), c.get("securityContext", {})
    flags = ["--network", "none"]
    uid = sec.get("runAsUser", pod_sec.get("runAsUser"))
    gid = sec.get("runAsGroup", pod_sec.get("runAsGroup", uid))
    if uid is not None:
        flags += ["--user", f"{uid}:{gid}"]
    if sec.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    for cap in sec.get("capabilities", {}).get("drop", []):
        flags += ["--cap-drop", cap]
    if sec.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    for name, value in env_values(docs, c, pod_name, namespace).items():
        flags += ["-e", f"{name}={value}"]
    for m in c.get("volumeMounts", []):
        source = volumes[m["name"]]
        flags += ["--tmpfs", m["mountPath"]] if source is None else ["-v", f"{source}:{m['mountPath']}"]
    return flags


def volumes_of(workload, root, fs_group):
    """Each volume's host directory (None: an emptyDir, a tmpfs)."""
    out = {}
    spec = workload["spec"]
    for v in spec["template"]["spec"].get("volumes", []):
        if "emptyDir" in v:
            out[v["name"]] = None
        elif "hostPath" in v:
            path = os.path.join(root, "host", v["hostPath"]["path"].lstrip("/"))
            os.makedirs(path, exist_ok=True)
            out[v["name"]] = path
    for claim in spec.get("volumeClaimTemplates", []):
        path = os.path.join(root, "pvc", claim["metadata"]["name"])
        os.makedirs(path, exist_ok=True)
        if fs_group is not None:
            os.chown(path, fs_group, fs_group)  # what the kubelet does for fsGroup
        out[claim["metadata"]["name"]] = path
    return out


def probe(name, c):
    http = c["readinessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    port = ports.get(http["port"], http["port"])
    url = f"http://{http.get('host', '127.0.0.1')}:{port}{http['path']}"
    for _ in range(40):
        out = docker("exec", name, "curl", "-fsS", "-o", "/dev/null", "-w", "%{http_code}", url, check=False)
        if out.stdout == "200":
            return True
        time.sleep(0.5)
    return False


def tree(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                out[os.path.relpath(os.path.join(d, f), root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    image = sys.argv[1]
    docs = render(OVERLAY)
    failures, started = [], []
    with tempfile.TemporaryDirectory() as root:
        # A host whose containerd has a registry file of its own already.
        etc = os.path.join(root, "host", "etc", "containerd")
        os.makedirs(os.path.join(etc, "certs.d", "docker.io"))
        with open(os.path.join(etc, "certs.d", "docker.io", "hosts.toml"), "w") as f:
            f.write('server = "https://registry-1.docker.io"\n')
        before = tree(etc)
        try:
            for kind, wname, cname in [("StatefulSet", "shoal-tracker", "tracker"),
                                       ("StatefulSet", "shoal-seeder", "seeder"),
                                       ("DaemonSet", "shoal-shim", "shim")]:
                workload = find(docs, kind, wname)
                namespace = workload["metadata"]["namespace"]
                pod_name = f"{wname}-0" if kind == "StatefulSet" else f"{wname}-node"
                fs_group = workload["spec"]["template"]["spec"].get("securityContext", {}).get("fsGroup")
                volumes = volumes_of(workload, root, fs_group)
                for init in workload["spec"]["template"]["spec"].get("initContainers", []):
                    flags = run_flags(docs, workload, init, pod_name, namespace, volumes)
                    out = docker("run", "--rm", *flags, image, *init["args"], check=False)
                    if out.returncode != 0:
                        failures.append(f"{wname} init container {init['name']}: {out.stderr.strip()}")
                c = container(workload, cname)
                name = f"shoal-k8s-{cname}-{os.getpid()}"
                flags = run_flags(docs, workload, c, pod_name, namespace, volumes)
                docker("run", "-d", "--name", name, *flags, image, *c["args"])
                started.append(name)
                if not probe(name, c):
                    logs = docker("logs", name, check=False)
                    failures.append(f"{wname}/{cname}: readiness probe never answered 200:\n{logs.stderr[-2000:]}")
                else:
                    print(f"{wname}/{cname}: ready, as user {flags[flags.index('--user') + 1] if '--user' in flags else 'root'}")
                if cname == "shim":
                    written = tree(etc)
                    if "certs.d/_default/hosts.toml" not in written:
                        failures.append(f"the init container wrote no _default/hosts.toml: {sorted(written)}")
                    hook = c["lifecycle"]["preStop"]["exec"]["command"]
                    out = docker("exec", name, *hook, check=False)
                    if out.returncode != 0:
                        failures.append(f"preStop {hook}: {out.stderr.strip()}")
                    if tree(etc) != before:
                        failures.append(f"preStop did not restore the host's containerd tree: {sorted(tree(etc))}")
                    else:
                        print("shim: init container installed, preStop restored the host's files")
        finally:
            for name in started:
                docker("rm", "-f", name, check=False)
            # Files the root-run containers left in the temporary tree.
            subprocess.run(["rm", "-rf", os.path.join(root, "host"), os.path.join(root, "pvc")])
    for f in failures:
        print(f"FAIL {f}")
    if failures:
        sys.exit(1)
    print("run_pods.py: tracker, seeder and shim containers ran as their pods specify")


if __name__ == "__main__":
    main()
