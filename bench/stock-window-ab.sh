#!/usr/bin/env bash
# A/B of librqbit patch 7 and the shim's stall decision (issue #25) with Transmission as the only
# seeding peer: the stock_seeders test's Transmission row, built at BASE (default cae2edb, before
# patch 7) and at HEAD, run alternately PAIRS times (default 3). BASE has no unchoke wait, so its
# shim gets a 60 s stall timeout (SHOAL_AB_STALL_MS; with its default 3 s it takes the whole blob
# from the webseed and the row fails): what is compared is how fast the bytes come from
# Transmission. Prints one `stock seeder transmission:` line per run, labelled base/head.
# Usage: [BASE=cae2edb] [PAIRS=3] bench/stock-window-ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-cae2edb}
PAIRS=${PAIRS:-3}
work=$(mktemp -d)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

git worktree add -q --detach "$work/base" "$BASE"
cp interop-tests/src/stock.rs "$work/base/interop-tests/src/"
cp interop-tests/tests/stock_seeders.rs "$work/base/interop-tests/tests/"
sed -i 's/^pub mod stack;/pub mod stack;\npub mod stock;/' "$work/base/interop-tests/src/lib.rs"
# BASE's shim as `shoal shim` ran it then, but with the stall timeout from SHOAL_AB_STALL_MS.
cat >>"$work/base/interop-tests/src/stack.rs" <<'EOF'

/// A/B only: BASE's shim with its stall timeout from SHOAL_AB_STALL_MS (60 s by default).
pub async fn start_shim_as_cli(data: &Path, registry: &str, seeder: &str, trackers: &[String]) -> Shim {
    let stall: u64 = std::env::var("SHOAL_AB_STALL_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(60_000);
    let shim = BoundShim::bind(ShimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_owned(),
        default_registry: registry.to_owned(),
        tag_ttl: Duration::from_secs(30),
        stale_tag_max_age: shoal_registry_shim::DEFAULT_STALE_TAG_MAX_AGE,
        mirror_miss_timeout: shoal_registry_shim::DEFAULT_MIRROR_MISS_TIMEOUT,
        upstream: Default::default(),
        swarm: Some(SwarmConfig {
            seeder_url: Some(seeder.to_owned()),
            seeding: seeding(trackers),
            stall_timeout: Duration::from_millis(stall),
            torrent_timeout: Duration::from_secs(3),
            peer_request_window: shoal_registry_shim::DEFAULT_PEER_REQUEST_WINDOW,
            seeder_trust: Default::default(),
        }),
        store_limit: None,
        tls: None,
    })
    .await
    .unwrap();
    let running = Shim { addr: shim.local_addr(), metrics: shim.metrics() };
    tokio::spawn(shim.serve(Tasks::root("test-shim")));
    running
}
EOF

# Both builds share this target dir (and its compiled dependencies); the two test binaries get
# the same file name, so each is copied out as soon as it is built.
target="${CARGO_TARGET_DIR:-$PWD/target}"
binary() { # $1: the checkout; prints the test binary's path
  (cd "$1" && cargo test -q -p shoal-interop-tests --test stock_seeders --target-dir "$target" --no-run --message-format json 2>/dev/null) |
    grep '"executable":"' | sed 's/.*"executable":"\([^"]*\)".*/\1/' | tail -n 1
}
cp "$(binary "$work/base")" "$work/stock-base"
cp "$(binary "$PWD")" "$work/stock-head"

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
cd interop-tests
for i in $(seq 1 "$PAIRS"); do
  for v in base head; do
    # The base row fails its every-byte-from-peers assertion only if it fell back; its line is
    # printed either way.
    line=$("$work/stock-$v" transmission_alone_feeds_the_shim --exact --nocapture 2>&1 | grep '^stock seeder ' || true)
    echo "$v pair $i: ${line:-no line, see the test output}"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
