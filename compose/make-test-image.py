#!/usr/bin/env python3
# Writes an OCI image layout of random layers for compose/demo.sh to push with skopeo: each layer a
# gzipped tar holding one file of random (incompressible) bytes, a config naming their diff_ids,
# a manifest and index.json tagged TAG. Standard library only. Prints one line per blob:
# "<kind> <digest> <size>" (kind: config|layer|manifest).
# Usage: make-test-image.py DIR TAG SIZE_MIB [SIZE_MIB...]
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile


def put_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def layer(size):
    payload = os.urandom(size)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("data.bin")
        info.size = size
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(payload))
    tar_bytes = raw.getvalue()
    # mtime=0: the gzip header carries no date.
    return tar_bytes, gzip.compress(tar_bytes, compresslevel=1, mtime=0)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__ or "usage: make-test-image.py DIR TAG SIZE_MIB [SIZE_MIB...]")
    layout, tag, sizes = sys.argv[1], sys.argv[2], [float(s) for s in sys.argv[3:]]
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    layers, diff_ids = [], []
    for mib in sizes:
        tar_bytes, gz = layer(int(mib * 1024 * 1024))
        diff_ids.append("sha256:" + hashlib.sha256(tar_bytes).hexdigest())
        layers.append(dict(mediaType="application/vnd.oci.image.layer.v1.tar+gzip", **put_blob(layout, gz)))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config_desc = dict(mediaType="application/vnd.oci.image.config.v1+json",
                       **put_blob(layout, json.dumps(config).encode()))
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": layers,
    }
    manifest_desc = dict(mediaType="application/vnd.oci.image.manifest.v1+json",
                         **put_blob(layout, json.dumps(manifest).encode()))
    manifest_desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [manifest_desc]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    print("config", config_desc["digest"], config_desc["size"])
    for l in layers:
        print("layer", l["digest"], l["size"])
    print("manifest", manifest_desc["digest"], manifest_desc["size"])


if __name__ == "__main__":
    main()
