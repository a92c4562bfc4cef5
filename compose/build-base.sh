#!/usr/bin/env bash
# Builds the lab's base image without any container registry: debootstrap a minimal Debian
# bookworm (from Debian's package mirror) with every package the lab images need, trim it, and
# `docker import` it. Offline stand-in for debian:bookworm-slim (see compose/README.md).
#
# Usage: compose/build-base.sh [TAG]        (default TAG: shoal-lab-base:bookworm)
# Env:   SHOAL_LAB_CACHE   cache dir for .debs and the rootfs tarball (default /var/cache/shoal-lab)
#        DEBIAN_MIRROR     default http://deb.debian.org/debian
# Re-runs are fast: the tarball is kept, keyed by suite + package list; the import is skipped when
# the daemon already holds an image with that key.
set -euo pipefail

TAG=${1:-shoal-lab-base:bookworm}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${SHOAL_LAB_CACHE:-/var/cache/shoal-lab}
# Everything the lab's Dockerfiles would otherwise apt-get from the network.
PACKAGES=ca-certificates,curl,aria2,qbittorrent-nox,docker-registry,prometheus

key=$(printf '%s\n' "$SUITE" "$PACKAGES" "trim-v2" | sha256sum | cut -c1-16)
tarball=$CACHE/base-$SUITE-$key.tar

if [ "$(docker image inspect -f '{{index .Config.Labels "shoal.lab.base"}}' "$TAG" 2>/dev/null)" = "$key" ]; then
  echo "build-base: $TAG already holds base $key"
  exit 0
fi

if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null || { echo "build-base: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
  [ "$(id -u)" -eq 0 ] || { echo "build-base: debootstrap needs root" >&2; exit 1; }
  mkdir -p "$CACHE/debs"
  root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "build-base: debootstrap $SUITE ($PACKAGES) into $root"
  debootstrap --variant=minbase --cache-dir="$CACHE/debs" --include="$PACKAGES" \
    "$SUITE" "$root" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 \
    || { tail -30 "$CACHE/debootstrap.log" >&2; exit 1; }
  # What debian:bookworm-slim leaves out too: docs, man pages, locales, apt's caches and lists.
  # Also moment-timezone's per-zone data (212 MB, a dependency of Prometheus' web UI, whose
  # graph page loads the bundled moment-timezone-with-data.min.js instead).
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* \
         "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/*.log \
         "$root"/usr/share/javascript/moment-timezone/data "$root"/debootstrap
  printf 'deb %s %s main\n' "$MIRROR" "$SUITE" > "$root/etc/apt/sources.list"
  tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
  # One tarball per suite: drop those of older package lists.
  find "$CACHE" -maxdepth 1 -name "base-$SUITE-*.tar" -delete
  mv "$tarball.tmp" "$tarball"
  rm -rf "$root"
  trap - EXIT
fi

echo "build-base: docker import $tarball as $TAG"
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' \
  --change "LABEL shoal.lab.base=$key" \
  "$tarball" "$TAG" >/dev/null
docker image inspect -f 'build-base: {{.Id}} {{.Size}} bytes' "$TAG"
