#!/usr/bin/env python3
"""Swarm lab: a small data centre of shaped network namespaces on one machine.

Every host (and the origin, and the upstream registry) gets its own namespace with a veth onto
a bridge that lives in a namespace of its own (no address, no route out). Each veth is shaped
with tc tbf to RATE in both directions, so the origin is no faster than any one host: the case
where P2P matters. Scenarios run on the same blob and links in one run:

  direct  N hosts fetch the blob straight from the upstream docker-registry (curl, /v2 API)
  aria2   N aria2c leechers + one aria2c seeder on the origin, announced via opentracker
  shoal   (not built yet: needs the registry shim; the harness says so rather than faking it)

Per scenario it prints p50/p99/max completion time divided by the ideal time (size / RATE),
and CPU use over the run. Everything it creates (namespaces, processes, tc rules, files) is
removed on exit, on failure and on SIGINT/SIGTERM; every step is bounded in time.

Run as root: python3 bench/swarm/lab.py --hosts 8 --rate-mbit 100 --size-mib 128
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PREFIX = "shl"  # every namespace and interface this lab makes starts with this
SUBNET = "10.231.0"  # only ever inside the lab's own namespaces
BRIDGE_NS = f"{PREFIX}-br"


def sh(*args, check=True, ns=None, **kw):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in args]
    return subprocess.run(cmd, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, **kw)


class Lab:
    """The namespaces, links and processes of one run; `close()` undoes all of it."""

    def __init__(self, rate_mbit, workdir):
        self.rate_mbit = rate_mbit
        self.workdir = workdir
        self.namespaces = []
        self.procs = []

    def __enter__(self):
        self.cleanup_leftovers()
        sh("ip", "netns", "add", BRIDGE_NS)
        self.namespaces.append(BRIDGE_NS)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=BRIDGE_NS)
        sh("ip", "link", "set", "br0", "up", ns=BRIDGE_NS)
        sh("ip", "link", "set", "lo", "up", ns=BRIDGE_NS)
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def cleanup_leftovers():
        out = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True).stdout
        for line in out.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(PREFIX + "-"):
                kill_namespace_processes(name)
                subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)

    def add_host(self, name, index):
        """A namespace `shl-<name>` at 10.231.0.<index>, its link shaped to the lab rate."""
        ns = f"{PREFIX}-{name}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        outer, inner = f"v{index}", "eth0"
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns, ns=BRIDGE_NS)
        sh("ip", "link", "set", outer, "master", "br0", ns=BRIDGE_NS)
        sh("ip", "link", "set", outer, "up", ns=BRIDGE_NS)
        sh("ip", "addr", "add", f"{SUBNET}.{index}/24", "dev", inner, ns=ns)
        sh("ip", "link", "set", inner, "up", ns=ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", ns=ns, check=False)
        for dev, where in ((outer, BRIDGE_NS), (inner, ns)):
            sh("tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", f"{self.rate_mbit}mbit",
               "burst", "128kb", "latency", "20ms", ns=where)
        return Host(ns, f"{SUBNET}.{index}", self)

    def spawn(self, ns, args, log_name, **kw):
        log = open(os.path.join(self.workdir, log_name), "wb")
        p = subprocess.Popen(["ip", "netns", "exec", ns] + [str(a) for a in args], stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for ns in reversed(self.namespaces):
            kill_namespace_processes(ns)
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        self.namespaces.clear()


def kill_namespace_processes(ns):
    out = subprocess.run(["ip", "netns", "pids", ns], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


class Host:
    def __init__(self, ns, ip, lab):
        self.ns, self.ip, self.lab = ns, ip, lab


def wait_port(host, port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = sh("bash", "-c", f"exec 3<>/dev/tcp/{host.ip}/{port}", ns=host.ns, check=False)
        if r.returncode == 0:
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host.ip}:{port} in {host.ns} after {timeout}s")


class CpuMeter:
    """Samples /proc/stat: mean and peak busy fraction of all cores over a scenario."""

    def __init__(self):
        self.samples, self._stop = [], threading.Event()

    @staticmethod
    def _read():
        f = open("/proc/stat").readline().split()[1:]
        vals = list(map(int, f))
        idle = vals[3] + vals[4]
        return sum(vals), idle

    def __enter__(self):
        self.start = self._read()

        def loop():
            prev = self._read()
            while not self._stop.wait(0.5):
                cur = self._read()
                dt, di = cur[0] - prev[0], cur[1] - prev[1]
                if dt > 0:
                    self.samples.append(1 - di / dt)
                prev = cur

        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()
        end = self._read()
        dt, di = end[0] - self.start[0], end[1] - self.start[1]
        self.mean = 1 - di / dt if dt else 0.0
        self.peak = max(self.samples, default=self.mean)


def run_clients(lab, hosts, make_cmd, deadline_s, stagger_s=0.0):
    """Starts one client per host behind a barrier, releases them together (or staggered), and
    returns each host's completion time in seconds from its own release."""
    fifo_dir = tempfile.mkdtemp(dir=lab.workdir)
    procs = []
    for i, h in enumerate(hosts):
        fifo = os.path.join(fifo_dir, f"go{i}")
        os.mkfifo(fifo)
        cmd = make_cmd(h, i)
        # The client starts only once the barrier byte arrives; setup costs stay out of the time.
        p = lab.spawn(h.ns, ["sh", "-c", f'read _ < "{fifo}"; exec "$@"', "client"] + cmd, f"client-{h.ns}.log")
        procs.append((p, fifo))
    time.sleep(0.2)  # let every shell reach its `read`; the barrier itself is the FIFO
    times = [None] * len(procs)
    released = [0.0] * len(procs)

    def watch(i, p):
        try:
            rc = p.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            return
        if rc == 0:
            times[i] = time.monotonic() - released[i]

    threads = []
    for i, (p, fifo) in enumerate(procs):
        released[i] = time.monotonic()
        with open(fifo, "w") as f:
            f.write("go\n")
        t = threading.Thread(target=watch, args=(i, p))
        t.start()
        threads.append(t)
        if stagger_s:
            time.sleep(stagger_s)
    for t in threads:
        t.join()
    return times


def summarize(name, times, ideal, cpu, lab=None, hosts=()):
    done = sorted(t for t in times if t is not None)
    failed = len(times) - len(done)
    for t, h in zip(times, hosts):
        if t is None:  # show why, before the run's files are removed
            log = open(os.path.join(lab.workdir, f"client-{h.ns}.log"), errors="replace").read()[-800:]
            print(f"{name}: client in {h.ns} failed:\n{log}", file=sys.stderr)
    if not done:
        return {"scenario": name, "failed": failed}
    q = lambda p: done[min(len(done) - 1, int(round(p * (len(done) - 1))))]
    return {
        "scenario": name,
        "hosts": len(times),
        "failed": failed,
        "p50_x": round(statistics.median(done) / ideal, 2),
        "p99_x": round(q(0.99) / ideal, 2),
        "max_x": round(done[-1] / ideal, 2),
        "cpu_mean": round(cpu.mean, 2),
        "cpu_peak": round(cpu.peak, 2),
    }


# --- scenarios -----------------------------------------------------------------------------

def scenario_direct(lab, registry, hosts, blob, repo, digest, ideal, args):
    url = f"http://{registry.ip}:5000/v2/{repo}/blobs/{digest}"
    cmd = lambda h, i: ["curl", "-sSf", "-o", "/dev/null", "--max-time", str(int(ideal * 40 + 60)), url]
    with CpuMeter() as cpu:
        times = run_clients(lab, hosts, cmd, ideal * 40 + 60, args.stagger)
    return summarize("direct", times, ideal, cpu, lab, hosts)


def scenario_aria2(lab, origin, hosts, blob, torrent_path, info_hash, ideal, args):
    wl = os.path.join(lab.workdir, "whitelist")
    with open(wl, "w") as f:
        f.write(info_hash + "\n")
    lab.spawn(origin.ns, ["opentracker", "-i", origin.ip, "-p", "6969", "-P", "6969", "-d", lab.workdir, "-w",
                          "whitelist"], "opentracker.log")
    wait_port(origin, 6969)
    seed_dir = os.path.dirname(blob)
    common = ["--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
              "--console-log-level=warn", "--summary-interval=0", "--bt-tracker-interval=1", "--file-allocation=none"]
    lab.spawn(origin.ns, ["aria2c", "-V", "--seed-ratio=0.0", "--listen-port=6881", f"--dir={seed_dir}"] + common + [torrent_path], "aria2-seed.log")
    wait_port(origin, 6881)
    cmd = lambda h, i: ["aria2c", "--seed-time=0", "--listen-port=6881", f"--dir={lab.workdir}/dl-{i}"] + common + [
        torrent_path]
    with CpuMeter() as cpu:
        times = run_clients(lab, hosts, cmd, ideal * 40 + 60, args.stagger)
    return summarize("aria2", times, ideal, cpu, lab, hosts)


# --- setup ---------------------------------------------------------------------------------

def make_blob(path, size):
    """A gzip stream (stored, level 0) of random bytes: a valid compressed layer, so skopeo
    pushes it as it is instead of compressing it (which would change its digest)."""
    import gzip
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=0, mtime=0) as gz:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            gz.write(chunk)
            left -= len(chunk)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def push_image(workdir, blob, digest, size, registry_addr, repo):
    """Writes an OCI layout holding the blob as its one layer and pushes it with skopeo."""
    layout = os.path.join(workdir, "layout")
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)
    os.link(blob, os.path.join(blobs, digest.split(":")[1]))

    def put(obj, media):
        data = json.dumps(obj).encode()
        d = hashlib.sha256(data).hexdigest()
        open(os.path.join(blobs, d), "wb").write(data)
        return {"mediaType": media, "digest": "sha256:" + d, "size": len(data)}

    config = put({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [digest]}},
                 "application/vnd.oci.image.config.v1+json")
    manifest = put({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config,
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest,
                                "size": size}]}, "application/vnd.oci.image.manifest.v1+json")
    manifest["annotations"] = {"org.opencontainers.image.ref.name": "lab"}
    json.dump({"schemaVersion": 2, "manifests": [manifest]}, open(os.path.join(layout, "index.json"), "w"))
    json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(layout, "oci-layout"), "w"))
    subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:lab",
                    f"docker://{registry_addr}/{repo}:lab"], check=True, timeout=300)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=int(os.environ.get("SHOAL_LAB_HOSTS", 8)))
    ap.add_argument("--rate-mbit", type=int, default=int(os.environ.get("SHOAL_LAB_RATE_MBIT", 100)))
    ap.add_argument("--size-mib", type=int, default=int(os.environ.get("SHOAL_LAB_SIZE_MIB", 128)))
    ap.add_argument("--stagger", type=float, default=float(os.environ.get("SHOAL_LAB_STAGGER", 0)),
                    help="seconds between host starts (0: cold-start burst)")
    ap.add_argument("--scenarios", default=os.environ.get("SHOAL_LAB_SCENARIOS", "direct,aria2"))
    ap.add_argument("--shoal", default=os.environ.get("SHOAL_BIN", "target/release/shoal"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("lab.py: needs root (ip netns, tc)")
    for tool in ("ip", "tc", "curl", "aria2c", "opentracker", "docker-registry", "skopeo"):
        if not shutil.which(tool):
            sys.exit(f"lab.py: {tool} is missing: bash .ci/install-deps")

    workdir = tempfile.mkdtemp(prefix="shoal-lab-", dir="/dev/shm")
    os.chmod(workdir, 0o755)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("lab.py: terminated"))
    results = []
    try:
        size = args.size_mib << 20
        seed_dir = os.path.join(workdir, "seed")
        os.makedirs(seed_dir)
        tmp_blob = os.path.join(seed_dir, "blob")
        digest = make_blob(tmp_blob, size)
        size = os.path.getsize(tmp_blob)
        ideal = size * 8 / (args.rate_mbit * 1e6)
        name = "sha256-" + digest.split(":")[1]
        blob = os.path.join(seed_dir, name)
        os.rename(tmp_blob, blob)
        torrent_path = os.path.join(workdir, "blob.torrent")
        out = subprocess.run([args.shoal, "torrent", blob, "-o", torrent_path, "--json", "--tracker",
                              f"http://{SUBNET}.1:6969/announce"], check=True, stdout=subprocess.PIPE, text=True)
        info_hash = json.loads(out.stdout)["info_hash"]

        for scenario in args.scenarios.split(","):
            with Lab(args.rate_mbit, workdir) as lab:
                origin = lab.add_host("origin", 1)
                registry = lab.add_host("registry", 2)
                hosts = [lab.add_host(f"h{i}", 10 + i) for i in range(args.hosts)]
                if scenario == "direct":
                    conf = os.path.join(workdir, "registry.yml")
                    open(conf, "w").write(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {workdir}/reg\n"
                                          f"http:\n  addr: 0.0.0.0:5000\n")
                    lab.spawn(registry.ns, ["docker-registry", "serve", conf], "registry.log")
                    wait_port(registry, 5000)
                    # Push from inside the registry's namespace: loopback, unshaped setup cost.
                    push_in_ns(registry, workdir, blob, digest, size)
                    results.append(scenario_direct(lab, registry, hosts, blob, "lab/blob", digest, ideal, args))
                elif scenario == "aria2":
                    results.append(scenario_aria2(lab, origin, hosts, blob, torrent_path, info_hash, ideal, args))
                elif scenario == "shoal":
                    sys.exit("lab.py: the shoal scenario needs the registry shim, which is not built yet")
                else:
                    sys.exit(f"lab.py: unknown scenario {scenario}")
            print(json.dumps(results[-1]), flush=True)
    finally:
        Lab.cleanup_leftovers()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nN={args.hosts} rate={args.rate_mbit}mbit size={args.size_mib}MiB stagger={args.stagger}s "
          f"ideal={ideal:.2f}s (size/rate)")
    print(f"{'scenario':<10}{'p50':>8}{'p99':>8}{'max':>8}{'failed':>8}{'cpu mean':>10}{'cpu peak':>10}")
    for r in results:
        print(f"{r['scenario']:<10}{r.get('p50_x', '-'):>8}{r.get('p99_x', '-'):>8}{r.get('max_x', '-'):>8}"
              f"{r['failed']:>8}{r.get('cpu_mean', '-'):>10}{r.get('cpu_peak', '-'):>10}")


def push_in_ns(registry, workdir, blob, digest, size):
    """skopeo runs in the root namespace; the registry listens in its own. Push through
    `ip netns exec` so the push uses the registry namespace's loopback."""
    layout_cmd = [sys.executable, os.path.abspath(__file__), "--push-helper", workdir, blob, digest, str(size)]
    sh(*layout_cmd, ns=registry.ns)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--push-helper":
        _, _, wd, b, d, s = sys.argv
        push_image(wd, b, d, int(s), "127.0.0.1:5000", "lab/blob")
    else:
        main()
