#!/usr/bin/env python3
"""Swarm lab: a small data centre of shaped network namespaces on one machine.

Every host (and the origin, and the upstream registry) gets its own namespace with a veth onto
a bridge that lives in a namespace of its own (no address, no route out). Each veth is shaped
with tc tbf to RATE in both directions, so the origin is no faster than any one host: the case
where P2P matters. Scenarios run on the same blob and links in one run:

  direct  N hosts fetch the blob straight from the upstream docker-registry (curl, /v2 API)
  aria2   N aria2c leechers + one aria2c seeder on the origin, announced via opentracker
  shoal   a shoal tracker + shoal seeder (mirroring from the upstream registry) on the origin,
          and N hosts each running `shoal shim`; each host pulls the image through its own shim
          (curl: manifest, then the blob), exactly as a container runtime would
  shoal-ring       two origins, each with a tracker and a seeder: seeders on one ring (both own
                   the blob), trackers sharded; every shim told both (issue 19; shoal_run.py)
  shoal-ring-kill  the same, the blob's primary owner seeder killed --kill-after s into the burst

Per scenario it prints p50/p99/max completion time divided by the ideal time (size / RATE),
CPU use over the run (the whole machine, and the lab's own processes), and for shoal where the
bytes came from (peers / webseed / upstream) and what the seeder uploaded. Everything it
creates (namespaces, processes, tc rules, files) is removed on exit, on failure and on
SIGINT/SIGTERM; every step is bounded in time.

Run as root: python3 bench/swarm/lab.py --hosts 8 --rate-mbit 100 --size-mib 128
(`--json-out FILE` appends one JSON line per scenario; bench/swarm/sweep.py runs a matrix and plots.
`--baseline-shoal BIN` adds a `shoal-baseline` scenario with another build, for before/after on the
same blob and links. Shim knobs: `--stall-timeout-ms`, `--torrent-timeout-ms`; tracker:
`--tracker-interval`. Results and analysis: docs/benchmarks.md, "Swarm lab".)
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
        self.procs.clear()  # reaped: their ids may be reused, never signal them again


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


def wait_port(host, port, timeout=20, ip=None):
    ip = ip or host.ip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = sh("bash", "-c", f"exec 3<>/dev/tcp/{ip}/{port}", ns=host.ns, check=False)
        if r.returncode == 0:
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {ip}:{port} in {host.ns} after {timeout}s")


class LinkMeter:
    """With --rates-out: samples every lab link's byte counters (`ip -s link` in the bridge
    namespace) every 250 ms during a scenario and appends them to that file as JSON lines, for
    `bench/swarm/rates.py` (per-second link use of the origin and the hosts)."""

    def __init__(self, path, scenario):
        self.path, self.scenario, self._stop = path, scenario, threading.Event()

    def _sample(self):
        out = subprocess.run(["ip", "-n", BRIDGE_NS, "-j", "-s", "link", "show"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True).stdout
        links = {}
        for link in json.loads(out or "[]"):
            stats = link.get("stats64") or link.get("stats") or {}
            if link.get("ifname", "").startswith("v"):
                # The bridge side's tx is what the host receives; its rx, what the host sends.
                links[link["ifname"]] = [stats.get("tx", {}).get("bytes", 0), stats.get("rx", {}).get("bytes", 0)]
        return links

    def __enter__(self):
        if not self.path:
            return self
        self.out = open(self.path, "a")

        def loop():
            while True:
                row = {"scenario": self.scenario, "t": round(time.monotonic(), 3), "links": self._sample()}
                self.out.write(json.dumps(row) + "\n")
                if self._stop.wait(0.25):
                    break

        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.path:
            self._stop.set()
            self.thread.join()
            self.out.close()


class CpuMeter:
    """Samples /proc/stat: mean and peak busy fraction of all cores over a scenario. With a lab,
    also the CPU time of the lab's own processes (servers and clients, threads included), so
    that other work on the machine (a compile next door) is told apart from the lab's."""

    def __init__(self, lab=None):
        self.samples, self._stop = [], threading.Event()
        self.lab = lab
        self.proc_ticks = {}  # pid -> (first seen, last seen) utime+stime in clock ticks
        self.tick = os.sysconf("SC_CLK_TCK")

    def _sample_procs(self):
        for p in list(self.lab.procs) if self.lab else ():
            try:
                f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            # utime, stime, and cutime, cstime of reaped children (a client's curls): fields 14-17
            ticks = sum(int(x) for x in f[11:15])
            first = self.proc_ticks.get(p.pid, (ticks, ticks))[0]
            self.proc_ticks[p.pid] = (first, ticks)

    @staticmethod
    def _read():
        f = open("/proc/stat").readline().split()[1:]
        vals = list(map(int, f))
        idle = vals[3] + vals[4]
        return sum(vals), idle

    def __enter__(self):
        self.start = self._read()
        self.t0 = time.monotonic()
        self._sample_procs()

        def loop():
            prev = self._read()
            while not self._stop.wait(0.5):
                self._sample_procs()
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
        self._sample_procs()
        end = self._read()
        dt, di = end[0] - self.start[0], end[1] - self.start[1]
        self.mean = 1 - di / dt if dt else 0.0
        self.peak = max(self.samples, default=self.mean)
        wall = time.monotonic() - self.t0
        lab_s = sum(last - first for first, last in self.proc_ticks.values()) / self.tick
        # In cores (of os.cpu_count()): 1.0 means one core busy for the whole scenario.
        self.lab_cores = lab_s / wall if wall > 0 else 0.0


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
        "lab_cores": round(cpu.lab_cores, 2),
        "times_s": [None if t is None else round(t, 2) for t in times],
    }


# --- scenarios -----------------------------------------------------------------------------

def scenario_direct(lab, registry, hosts, blob, repo, digest, ideal, args):
    url = f"http://{registry.ip}:5000/v2/{repo}/blobs/{digest}"
    cmd = lambda h, i: ["curl", "-sSf", "-o", "/dev/null", "--max-time", str(int(ideal * 40 + 60)), url]
    with CpuMeter(lab) as cpu, LinkMeter(args.rates_out, "direct"):
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
    with CpuMeter(lab) as cpu, LinkMeter(args.rates_out, "aria2"):
        times = run_clients(lab, hosts, cmd, ideal * 40 + 60, args.stagger)
    return summarize("aria2", times, ideal, cpu, lab, hosts)


def start_registry(lab, registry, workdir, blob, digest, size):
    """The upstream docker-registry in its own namespace, holding the lab image `lab/blob:lab`."""
    conf = os.path.join(workdir, "registry.yml")
    open(conf, "w").write(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {workdir}/reg\n"
                          f"http:\n  addr: 0.0.0.0:5000\n")
    lab.spawn(registry.ns, ["docker-registry", "serve", conf], "registry.log")
    wait_port(registry, 5000)
    # Push from inside the registry's namespace: loopback, unshaped setup cost.
    push_in_ns(registry, workdir, blob, digest, size)


def scrape(host, url, timeout=10):
    """A Prometheus text page fetched from inside a namespace, as {name{labels}: value}."""
    r = sh("curl", "-sS", "--max-time", timeout, url, ns=host.ns, check=False)
    out = {}
    for line in r.stdout.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


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
    if not os.path.exists(blobs):  # a second scenario's registry reuses the layout
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
    import shoal_run  # imports this file as `lab` for its helpers: only once main runs

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=int(os.environ.get("SHOAL_LAB_HOSTS", 8)))
    ap.add_argument("--rate-mbit", type=int, default=int(os.environ.get("SHOAL_LAB_RATE_MBIT", 100)))
    ap.add_argument("--size-mib", type=int, default=int(os.environ.get("SHOAL_LAB_SIZE_MIB", 128)))
    ap.add_argument("--stagger", type=float, default=float(os.environ.get("SHOAL_LAB_STAGGER", 0)),
                    help="seconds between host starts (0: cold-start burst)")
    ap.add_argument("--scenarios", default=os.environ.get("SHOAL_LAB_SCENARIOS", "direct,aria2,shoal"))
    ap.add_argument("--shoal", default=os.environ.get("SHOAL_BIN", "target/release/shoal"))
    ap.add_argument("--baseline-shoal", default=os.environ.get("SHOAL_LAB_BASELINE_BIN"),
                    help="another shoal binary, run as scenario shoal-baseline (before/after a change)")
    ap.add_argument("--stall-timeout-ms", type=int, default=int(os.environ.get("SHOAL_LAB_STALL_TIMEOUT_MS", 3000)),
                    help="shim: ms in which the swarm delivers no piece before the rest comes over HTTP")
    ap.add_argument("--torrent-timeout-ms", type=int, default=int(os.environ.get("SHOAL_LAB_TORRENT_TIMEOUT_MS", 3000)),
                    help="shim: ms to wait for the seeder's torrent")
    ap.add_argument("--tracker-interval", type=int, default=int(os.environ.get("SHOAL_LAB_TRACKER_INTERVAL", 300)),
                    help="shoal tracker: seconds between a client's announces")
    ap.add_argument("--kill-after", type=float, default=float(os.environ.get("SHOAL_LAB_KILL_AFTER", 5)),
                    help="shoal-ring-kill: seconds into the burst at which the primary owner seeder is killed")
    ap.add_argument("--json-out", default=os.environ.get("SHOAL_LAB_JSON_OUT"),
                    help="append one JSON line per scenario to this file")
    ap.add_argument("--keep-logs", default=os.environ.get("SHOAL_LAB_KEEP_LOGS"),
                    help="copy every process's log here (per scenario) before the run's files go")
    ap.add_argument("--label", default=os.environ.get("SHOAL_LAB_LABEL", ""), help="free text kept in --json-out")
    ap.add_argument("--rates-out", default=os.environ.get("SHOAL_LAB_RATES_OUT"),
                    help="append every link's byte counters, 4 times a second, to this file (bench/swarm/rates.py)")
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

        run_info = {"n": args.hosts, "rate_mbit": args.rate_mbit, "size_mib": args.size_mib,
                    "stagger_s": args.stagger, "ideal_s": round(ideal, 2), "label": args.label,
                    "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                    "load_before": open("/proc/loadavg").read().split()[:3],
                    "stall_timeout_ms": args.stall_timeout_ms, "tracker_interval": args.tracker_interval,
                    "shoal_bin": args.shoal, "baseline_bin": args.baseline_shoal}
        for scenario in args.scenarios.split(","):
            with Lab(args.rate_mbit, workdir) as lab:
                origin = lab.add_host("origin", 1)
                registry = lab.add_host("registry", 2)
                hosts = [lab.add_host(f"h{i}", 10 + i) for i in range(args.hosts)]
                try:
                    if scenario == "direct":
                        start_registry(lab, registry, workdir, blob, digest, size)
                        result = scenario_direct(lab, registry, hosts, blob, "lab/blob", digest, ideal, args)
                    elif scenario == "aria2":
                        result = scenario_aria2(lab, origin, hosts, blob, torrent_path, info_hash, ideal, args)
                    elif scenario == "shoal":
                        result = shoal_run.scenario_shoal(lab, [origin], registry, hosts, blob, digest, size,
                                                          ideal, args)
                    elif scenario == "shoal-baseline" and args.baseline_shoal:
                        # Another build of shoal on the same blob and links: before/after a change.
                        result = shoal_run.scenario_shoal(lab, [origin], registry, hosts, blob, digest, size,
                                                          ideal, args, name=scenario, binary=args.baseline_shoal)
                    elif scenario in ("shoal-ring", "shoal-ring-kill"):
                        origins = [origin, lab.add_host("origin2", 3)]
                        kill = args.kill_after if scenario == "shoal-ring-kill" else None
                        result = shoal_run.scenario_shoal(lab, origins, registry, hosts, blob, digest, size,
                                                          ideal, args, name=scenario, kill_after=kill)
                    else:
                        sys.exit(f"lab.py: unknown scenario {scenario}")
                finally:
                    if args.keep_logs:
                        keep_logs(workdir, os.path.join(args.keep_logs, scenario))
            # The lab (and every process in it) is gone: its shims' and seeder's state can go too.
            shutil.rmtree(os.path.join(workdir, f"{scenario}-state"), ignore_errors=True)
            result.update(run_info)
            results.append(result)
            print(json.dumps(result), flush=True)
            if args.json_out:
                with open(args.json_out, "a") as f:
                    f.write(json.dumps(result) + "\n")
    finally:
        Lab.cleanup_leftovers()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nN={args.hosts} rate={args.rate_mbit}mbit size={args.size_mib}MiB stagger={args.stagger}s "
          f"ideal={ideal:.2f}s (size/rate)")
    print(f"{'scenario':<10}{'p50':>8}{'p99':>8}{'max':>8}{'failed':>8}{'cpu mean':>10}{'cpu peak':>10}"
          f"{'lab cores':>10}")
    for r in results:
        print(f"{r['scenario']:<10}{r.get('p50_x', '-'):>8}{r.get('p99_x', '-'):>8}{r.get('max_x', '-'):>8}"
              f"{r['failed']:>8}{r.get('cpu_mean', '-'):>10}{r.get('cpu_peak', '-'):>10}{r.get('lab_cores', '-'):>10}")
    for r in results:
        if "bytes_by_source_x" in r:
            print(f"{r['scenario']}: bytes by source (x blob size) {r['bytes_by_source_x']}, seeder uploaded "
                  f"{r['seeder_bt_upload_x']}x over BitTorrent and {r['seeder_webseed_upload_x']}x over its webseed")
    if any(r["failed"] for r in results):
        sys.exit("lab.py: some clients failed (see above)")


def keep_logs(workdir, dest):
    os.makedirs(dest, exist_ok=True)
    for name in os.listdir(workdir):
        if name.endswith(".log"):
            shutil.copy(os.path.join(workdir, name), dest)


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
