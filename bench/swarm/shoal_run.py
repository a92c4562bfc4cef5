"""The swarm lab's Shoal scenarios: trackers and seeders on the origin host(s), a shim per host.

`shoal` runs one tracker and one seeder on the origin. `shoal-ring` runs a tracker and a seeder
on each of two origin hosts, the seeders on one ring (`--member`, 2 replicas: both hold the
blob) and the trackers sharded (`--member`, `--self-url`); every shim is told both.
`shoal-ring-kill` is the same with the blob's primary owner seeder killed (SIGKILL)
`--kill-after` seconds into the burst (issue 19). Imported by lab.py, whose helpers it uses.
"""

import os
import shutil
import signal
import subprocess
import threading
import time

import lab as L


def start_services(lab, origins, shoal, upstream, state, args):
    """Trackers and seeders, one of each per origin; returns (announce URLs, seeder URLs, seeder processes)."""
    announces = [f"http://{o.ip}:6969/announce" for o in origins]
    seeders = [f"http://{o.ip}:8080" for o in origins]
    ring = len(origins) > 1
    for i, o in enumerate(origins):
        members = ["--member", ",".join(announces), "--self-url", announces[i]] if ring else []
        lab.spawn(o.ns, [shoal, "tracker", "--listen", f"{o.ip}:6969", "--interval", args.tracker_interval,
                         "--min-interval", 1] + members, f"tracker{i or ''}.log")
    procs = []
    for i, o in enumerate(origins):
        L.wait_port(o, 6969)
        members = ["--public-url", seeders[i], "--member", ",".join(seeders), "--replicas", 2] if ring else []
        procs.append(lab.spawn(o.ns, [shoal, "seeder", "--data-dir", f"{state}/seeder{i}", "--listen", f"{o.ip}:8080",
                                      "--bt-listen", f"{o.ip}:6881", "--tracker", ",".join(announces),
                                      "--upstream", upstream, "--insecure-registry", upstream] + members,
                               f"seeder{i or ''}.log"))
    for o in origins:
        L.wait_port(o, 8080)
    return announces, seeders, procs


def mirror(origins, seeders, digest, upstream, ideal):
    """The origin(s) mirror the blob before the clock starts (over shaped links), as they would
    long before a deploy: a torrent request makes the first seeder (or its owners) fetch it.
    With a ring, waits until every seeder's webseed serves it (both are owners)."""
    first = origins[0]
    torrent_url = f"{seeders[0]}/v1/blobs/{digest}/torrent?repo=lab/blob&ns={upstream}"
    deadline = time.monotonic() + ideal * 4 + 120
    while True:
        r = L.sh("curl", "-sSf", "-o", "/dev/null", "--max-time", "60", torrent_url, ns=first.ns, check=False)
        if r.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the seeder never served the torrent: {r.stderr}")
        time.sleep(0.5)
    name = "sha256-" + digest.split(":")[1]
    for url in seeders[1:]:
        while L.sh("curl", "-sSf", "-o", "/dev/null", "-r", "0-0", "--max-time", "10", f"{url}/webseed/{name}",
                   ns=first.ns, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} never held the blob")
            time.sleep(0.5)


def primary_owner(origin, seeders, digest):
    """The seeder whose webseed the blob's torrent names first: its primary owner."""
    out = subprocess.run(["ip", "netns", "exec", origin.ns, "curl", "-sSf", "--max-time", "10",
                          f"{seeders[0]}/v1/blobs/{digest}/torrent"], stdout=subprocess.PIPE, timeout=30).stdout
    first = min((out.find(s.encode()), i) for i, s in enumerate(seeders) if out.find(s.encode()) >= 0)
    return first[1]


def scenario_shoal(lab, origins, registry, hosts, blob, digest, size, ideal, args, name="shoal", binary=None,
                   kill_after=None):
    shoal = os.path.abspath(binary or args.shoal)
    L.start_registry(lab, registry, lab.workdir, blob, digest, size)
    upstream = f"{registry.ip}:5000"
    # Fresh state per scenario: a second shoal scenario in the same run must not find the blob
    # in the first one's caches.
    state = os.path.join(lab.workdir, f"{name}-state")
    shutil.rmtree(state, ignore_errors=True)
    announces, seeders, seeder_procs = start_services(lab, origins, shoal, upstream, state, args)
    mirror(origins, seeders, digest, upstream, ideal)
    for i, h in enumerate(hosts):
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info,librqbit=warn,librqbit_core=warn"))
        lab.spawn(h.ns, [shoal, "shim", "--listen", "127.0.0.1:5000", "--data-dir", f"{state}/shim-{i}",
                         "--upstream", upstream, "--insecure-registry", upstream,
                         "--seeder", ",".join(seeders), "--tracker", ",".join(announces),
                         "--bt-listen", f"{h.ip}:6882", "--stall-timeout-ms", args.stall_timeout_ms,
                         "--torrent-timeout-ms", args.torrent_timeout_ms], f"shim-{h.ns}.log", env=env)
    for h in hosts:
        L.wait_port(h, 5000, ip="127.0.0.1")
    # What a runtime does: resolve the tag to a manifest, then fetch the layer. The client fails
    # unless it received exactly the blob's size (the shim ends a bad blob's body in an error).
    base = "http://127.0.0.1:5000/v2/lab/blob"
    limit = str(int(ideal * 40 + 60))
    pull = (f'curl -sSf -o /dev/null --max-time {limit} -H "Accept: application/vnd.oci.image.manifest.v1+json" '
            f'{base}/manifests/lab && n=$(curl -sSf -o /dev/null --max-time {limit} -w "%{{size_download}}" '
            f'{base}/blobs/{digest}) && test "$n" = {size}')
    cmd = lambda h, i: ["sh", "-c", pull]
    metrics = lambda: [L.scrape(o, f"{url}/metrics") for o, url in zip(origins, seeders)]
    seeder_before = metrics()
    killer = None
    if kill_after is not None:
        victim = primary_owner(origins[0], seeders, digest)
        killer = threading.Timer(kill_after, lambda: os.killpg(seeder_procs[victim].pid, signal.SIGKILL))
        killer.start()
    with L.CpuMeter(lab) as cpu, L.LinkMeter(args.rates_out, name):
        times = L.run_clients(lab, hosts, cmd, ideal * 40 + 60, args.stagger)
    if killer:
        killer.cancel()
    result = L.summarize(name, times, ideal, cpu, lab, hosts)
    # Where the bytes came from, summed over the shims, in blob sizes.
    sources = {}
    for h in hosts:
        for key, value in L.scrape(h, "http://127.0.0.1:5000/metrics").items():
            if key.startswith("shoal_shim_blob_bytes_total{"):
                source = key.split('source="', 1)[1].split('"', 1)[0]
                sources[source] = sources.get(source, 0) + value
    result["bytes_by_source_x"] = {k: round(v / size, 2) for k, v in sorted(sources.items())}
    # A killed seeder has no metrics left: it counts what it had sent before the burst. The
    # upload counters follow librqbit's every 2 s.
    time.sleep(2.5)
    seeder_after = [after or before for before, after in zip(seeder_before, metrics())]
    # `_total` since 2026-12-03; the old gauge's name for --baseline-shoal builds before that.
    up = lambda m: m.get("shoal_seeder_bittorrent_uploaded_bytes_total", m.get("shoal_seeder_bittorrent_uploaded_bytes", 0))
    web = lambda m: m.get("shoal_seeder_webseed_uploaded_bytes_total", 0)
    delta = lambda f: sum(f(a) - f(b) for a, b in zip(seeder_after, seeder_before))
    result["seeder_bt_upload_x"] = round(delta(up) / size, 2)
    result["seeder_webseed_upload_x"] = round(delta(web) / size, 2)
    result["seeders"] = len(origins)
    return result
