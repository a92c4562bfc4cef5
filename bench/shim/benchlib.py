#!/usr/bin/env python3
"""Helpers for scripts/bench-shim-pull.sh (issue 5's shim benchmark).

  layout DIR --tag T --mib 342,341,341   write (once; reused while DIR/summary.json exists) an
                                         OCI image layout with one random, uncompressed tar layer
                                         per size, a config and a manifest; print its summary JSON
  ttfb URL --digest sha256:..            GET a blob and time it: response headers (what curl's
                                         %{time_starttransfer} sees), first body byte, last byte;
                                         check the bytes' SHA-256; print one JSON object
  median X [X ...]                       print the median
  cpu CMD [ARG ...]                      run CMD; print "CPU_SECONDS WALL_SECONDS" (user + system
                                         of CMD and its children); exit with CMD's status

Uncompressed tar layers (`application/vnd.oci.image.layer.v1.tar`) keep gzip's CPU cost out of
a benchmark about moving bytes; random content keeps any compression on the way honest.
"""

import argparse
import hashlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import urllib.parse

CHUNK = 4 << 20
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"


def put_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return f"sha256:{digest}", len(data)


def write_layer(layout, size):
    """A tar holding one file of `size` random bytes, hashed while written."""
    tmp = os.path.join(layout, "blobs", "sha256", "incoming")
    info = tarfile.TarInfo("data.bin")
    info.size, info.mode, info.mtime = size, 0o644, 0
    digest = hashlib.sha256()
    length = 0
    with open(tmp, "wb") as f:
        def write(b):
            nonlocal length
            digest.update(b)
            f.write(b)
            length += len(b)

        write(info.tobuf(format=tarfile.USTAR_FORMAT))
        left = size
        while left:
            n = min(CHUNK, left)
            write(os.urandom(n))
            left -= n
        write(b"\0" * ((-size) % 512))
        write(b"\0" * 1024)  # the tar end-of-archive marker
    name = f"sha256:{digest.hexdigest()}"
    os.rename(tmp, os.path.join(layout, "blobs", "sha256", digest.hexdigest()))
    return name, length


def layout(args):
    summary_path = os.path.join(args.dir, "summary.json")
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            print(f.read())
        return
    shutil.rmtree(args.dir, ignore_errors=True)
    os.makedirs(os.path.join(args.dir, "blobs", "sha256"))
    layers = []
    for mib in args.mib:
        digest, size = write_layer(args.dir, mib << 20)
        layers.append({"mediaType": LAYER_MEDIA_TYPE, "digest": digest, "size": size})
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        # Uncompressed layers: each diff_id is the layer's own digest.
        "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]},
    }
    cdigest, csize = put_blob(args.dir, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": csize},
        "layers": layers,
    }
    mdigest, msize = put_blob(args.dir, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": mdigest,
                "size": msize,
                "annotations": {"org.opencontainers.image.ref.name": args.tag},
            }
        ],
    }
    with open(os.path.join(args.dir, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(args.dir, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    summary = json.dumps(
        {"tag": args.tag, "manifest": mdigest, "config": cdigest, "layers": layers,
         "layer_bytes": sum(l["size"] for l in layers)}
    )
    # Written last: its presence means the layout is complete.
    with open(summary_path + ".tmp", "w") as f:
        f.write(summary)
    os.rename(summary_path + ".tmp", summary_path)
    print(summary)


def ttfb(args):
    url = urllib.parse.urlsplit(args.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=args.timeout)
    t0 = time.monotonic()
    conn.request("GET", url.path + (f"?{url.query}" if url.query else ""))
    resp = conn.getresponse()
    t_headers = time.monotonic() - t0
    if resp.status != 200:
        print(json.dumps({"error": f"HTTP {resp.status}", "body": resp.read(2000).decode(errors="replace")}))
        sys.exit(1)
    digest = hashlib.sha256()
    first = resp.read(1)  # returns as soon as any body byte is in
    t_first = time.monotonic() - t0
    digest.update(first)
    total = len(first)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while True:
        n = resp.readinto(buf)
        if not n:
            break
        digest.update(view[:n])
        total += n
    t_total = time.monotonic() - t0
    ok = f"sha256:{digest.hexdigest()}" == args.digest
    print(json.dumps({"headers_s": round(t_headers, 4), "first_byte_s": round(t_first, 4),
                      "total_s": round(t_total, 3), "bytes": total, "digest_ok": ok}))
    if not ok:
        sys.exit(1)


def median(args):
    print(f"{statistics.median(args.values):.4f}")


def cpu(args):
    if not args.cmd:
        sys.exit("cpu: no command")
    t0 = time.monotonic()
    child = subprocess.Popen(args.cmd)
    _, status, usage = os.wait4(child.pid, 0)
    print(f"{usage.ru_utime + usage.ru_stime:.3f} {time.monotonic() - t0:.3f}")
    sys.exit(os.waitstatus_to_exitcode(status))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("layout")
    p.add_argument("dir")
    p.add_argument("--tag", required=True)
    p.add_argument("--mib", required=True, type=lambda s: [int(x) for x in s.split(",")])
    p.set_defaults(run=layout)
    p = sub.add_parser("ttfb")
    p.add_argument("url")
    p.add_argument("--digest", required=True)
    p.add_argument("--timeout", type=float, default=120)
    p.set_defaults(run=ttfb)
    p = sub.add_parser("median")
    p.add_argument("values", nargs="+", type=float)
    p.set_defaults(run=median)
    p = sub.add_parser("cpu")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(run=cpu)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
