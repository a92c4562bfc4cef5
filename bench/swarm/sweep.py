#!/usr/bin/env python3
"""Swarm lab sweep: runs bench/swarm/lab.py over several host counts and blob sizes (each
configuration one lab.py run, so every scenario of it shares the blob and the links), collects
the JSON lines, and plots completion time / ideal against N and against blob size into a PNG.

  /usr/bin/python3 bench/swarm/sweep.py --hosts 4,8,16,32 --sizes 64 --size-hosts 8 --sizes-list 32,64,128,256 \
      --out docs/swarm-scaling.png --json /tmp/swarm-sweep.jsonl

`--plot-only` redraws from an existing JSON file. Needs matplotlib (Debian: python3-matplotlib,
so run it with /usr/bin/python3 where another python3 comes first in PATH).
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(args, hosts, size, label):
    cmd = [sys.executable, os.path.join(HERE, "lab.py"), "--hosts", str(hosts), "--size-mib", str(size),
           "--rate-mbit", str(args.rate_mbit), "--stagger", str(args.stagger), "--scenarios", args.scenarios,
           "--json-out", args.json, "--label", label] + args.lab_args
    print("+", " ".join(cmd), flush=True)
    # lab.py bounds each client; this bounds the whole configuration (setup included).
    r = subprocess.run(cmd, timeout=args.timeout)
    if r.returncode:
        print(f"sweep: {label} hosts={hosts} size={size} exited {r.returncode}", file=sys.stderr)


def plot(path_json, out, rate):
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in open(path_json) if line.strip()]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    colours = {"direct": "tab:red", "aria2": "tab:orange", "shoal": "tab:blue"}
    for ax, label, key, xlabel in ((axes[0], "by-hosts", "n", "hosts (N)"),
                                   (axes[1], "by-size", "size_mib", "blob size (MiB)")):
        sub = [r for r in rows if r.get("label") == label and "p50_x" in r]
        fixed = sorted({(r["size_mib"] if key == "n" else r["n"]) for r in sub})
        for scenario in ("direct", "aria2", "shoal"):
            pts = sorted((r[key], r["p50_x"], r["max_x"]) for r in sub if r["scenario"] == scenario)
            if not pts:
                continue
            xs = [p[0] for p in pts]
            ax.plot(xs, [p[1] for p in pts], "o-", color=colours[scenario], label=f"{scenario} p50")
            ax.plot(xs, [p[2] for p in pts], "s--", color=colours[scenario], alpha=0.6, label=f"{scenario} max")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_yscale("log")
        ax.set_yticks([1, 1.15, 1.5, 2, 3, 5, 10, 20, 30])
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("completion time / ideal (size / rate)")
        fixed = "/".join(map(str, fixed))
        what = f"blob {fixed} MiB" if key == "n" else f"N = {fixed}"
        ax.set_title(f"{what}, every link {rate} mbit")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Swarm lab: all hosts pull one blob at once (bench/swarm/sweep.py)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"sweep: wrote {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", default="4,8,16,32", help="host counts for the N sweep")
    ap.add_argument("--sizes", type=int, default=64, help="blob MiB for the N sweep")
    ap.add_argument("--size-hosts", type=int, default=8, help="N for the size sweep")
    ap.add_argument("--sizes-list", default="32,64,128,256", help="blob MiB for the size sweep ('' skips it)")
    ap.add_argument("--rate-mbit", type=int, default=100)
    ap.add_argument("--stagger", type=float, default=0)
    ap.add_argument("--scenarios", default="direct,aria2,shoal")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per configuration")
    ap.add_argument("--json", default="swarm-sweep.jsonl")
    ap.add_argument("--out", default="docs/swarm-scaling.png")
    ap.add_argument("--plot-only", action="store_true")
    ap.add_argument("lab_args", nargs="*", help="passed to lab.py (after --)")
    args = ap.parse_args()
    try:  # fail before a 20-minute sweep, not after it
        import matplotlib  # noqa: F401
    except ImportError:
        sys.exit("sweep.py: needs matplotlib (apt-get install python3-matplotlib; run with /usr/bin/python3)")
    if not args.plot_only:
        for n in [int(x) for x in args.hosts.split(",") if x]:
            run(args, n, args.sizes, "by-hosts")
        for size in [int(x) for x in args.sizes_list.split(",") if x]:
            run(args, args.size_hosts, size, "by-size")
    plot(args.json, args.out, args.rate_mbit)


if __name__ == "__main__":
    main()
