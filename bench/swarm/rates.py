#!/usr/bin/env python3
"""Per-second link use of a swarm lab run, from `lab.py --rates-out FILE`.

For each scenario in FILE: one row per second with the origin's upload, the hosts' download
(mean, min, max) and upload (mean) as fractions of the lab rate R, and the MB each host has
received so far (mean, min). Link names follow lab.py: v1 is the origin, v2 the upstream
registry, v10 and up the hosts; the counters are the bridge side's, so a host's download is
its link's tx there.

Usage: bench/swarm/rates.py FILE --rate-mbit R [--step S]
"""

import argparse
import json
import sys
from collections import defaultdict


def rows_by_scenario(path):
    scenarios = defaultdict(list)
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            scenarios[row["scenario"]].append(row)
    return scenarios


def table(rows, rate_bytes, step):
    hosts = sorted((k for k in rows[0]["links"] if int(k[1:]) >= 10), key=lambda k: int(k[1:]))
    first = rows[0]
    out = [" t(s)  origin_up  hosts_down mean/min/max  hosts_up  got_MB mean/min"]
    every = max(1, round(step / 0.25))
    for i in range(every, len(rows), every):
        a, b = rows[i - every], rows[i]
        dt = b["t"] - a["t"]
        if dt <= 0 or not all(h in a["links"] and h in b["links"] for h in hosts + ["v1"]):
            continue
        rate = lambda link, d: (b["links"][link][d] - a["links"][link][d]) / dt / rate_bytes
        down = [rate(h, 0) for h in hosts]
        up = [rate(h, 1) for h in hosts]
        got = [(b["links"][h][0] - first["links"][h][0]) / 1e6 for h in hosts]
        out.append(f"{b['t'] - first['t']:5.1f}  {rate('v1', 1):9.2f}  {sum(down) / len(down):6.2f} {min(down):5.2f} "
                   f"{max(down):5.2f}  {sum(up) / len(up):8.2f}  {sum(got) / len(got):7.1f} {min(got):6.1f}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--rate-mbit", type=float, required=True)
    ap.add_argument("--step", type=float, default=1.0, help="seconds per row")
    args = ap.parse_args()
    scenarios = rows_by_scenario(args.file)
    if not scenarios:
        sys.exit(f"rates.py: no samples in {args.file}")
    for name, rows in scenarios.items():
        print(f"== {name} ({len(rows)} samples)")
        print(table(rows, args.rate_mbit * 1e6 / 8, args.step))


if __name__ == "__main__":
    main()
