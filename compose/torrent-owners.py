#!/usr/bin/env python3
# Reads one blob's .torrent (as a seeder serves it at /v1/blobs/<digest>/torrent) for
# compose/demo-ring.sh and prints, one "key value..." line each:
#   infohash  <hex>                       SHA-1 of the bencoded info dict
#   webseeds  <url>...                    the url-list: the blob's owner seeders, primary first
#   trackers  <url>...                    the announce-list, one tier per line entry, in order
#   ring-seeders  <url>...                the seeder members in rendezvous order of the digest
#   ring-trackers <url>...                the tracker members in rendezvous order of the infohash
# The last two are computed here, independently of the seeder, the way torrents/src/rendezvous.rs
# does (weight: the first 8 bytes, big-endian, of SHA-1(key || 0x00 || member); highest first,
# ties to the smaller name; seeder key: the digest's 32 bytes, tracker key: the infohash's 20).
# Standard library only.
# Usage: torrent-owners.py TORRENT DIGEST SEEDER_URL,... TRACKER_URL,...
import hashlib
import sys


def decode(data, i=0):
    """One bencoded value at data[i:]: (value, index after it)."""
    c = data[i:i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if c == b"l":
        i, items = i + 1, []
        while data[i:i + 1] != b"e":
            v, i = decode(data, i)
            items.append(v)
        return items, i + 1
    if c == b"d":
        i, d = i + 1, {}
        while data[i:i + 1] != b"e":
            k, i = decode(data, i)
            start = i
            v, i = decode(data, i)
            d[k] = v
            if k == b"info":
                d[b"__info_span__"] = (start, i)
        return d, i + 1
    colon = data.index(b":", i)
    n = int(data[i:colon])
    return data[colon + 1:colon + 1 + n], colon + 1 + n


def rendezvous(key, members):
    def weight(m):
        return int.from_bytes(hashlib.sha1(key + b"\0" + m.encode()).digest()[:8], "big")
    return sorted(members, key=lambda m: (-weight(m), m))


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: torrent-owners.py TORRENT DIGEST SEEDER_URL,... TRACKER_URL,...")
    raw = open(sys.argv[1], "rb").read()
    top, _ = decode(raw)
    start, end = top[b"__info_span__"]
    info_hash = hashlib.sha1(raw[start:end]).digest()
    webseeds = top.get(b"url-list", [])
    if isinstance(webseeds, bytes):
        webseeds = [webseeds]
    tiers = top.get(b"announce-list") or [[top[b"announce"]]]
    digest = bytes.fromhex(sys.argv[2].removeprefix("sha256:"))
    seeders = sorted({s.rstrip("/") for s in sys.argv[3].split(",") if s})
    trackers = [t for t in sys.argv[4].split(",") if t]
    print("infohash", info_hash.hex())
    print("webseeds", *(w.decode() for w in webseeds))
    print("trackers", *(u.decode() for tier in tiers for u in tier))
    print("ring-seeders", *rendezvous(digest, seeders))
    print("ring-trackers", *rendezvous(info_hash, trackers))


if __name__ == "__main__":
    main()
