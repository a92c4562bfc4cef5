#!/usr/bin/env python3
"""Checks deploy/systemd's units: `systemd-analyze verify` accepts each with nothing to say
(an unknown or misspelt directive is only a warning there, so any output fails here), each
runs its `shoal` subcommand under DynamicUser with the sandbox directives this project keeps,
reads /etc/shoal/<service>.env, and sets only SHOAL_* names that the binary lists as env twins.

Needs systemd-analyze (Debian's systemd) and a shoal binary (SHOAL_BIN, default
target/debug/shoal); a missing one is a failure. systemd-analyze verify runs without a running
systemd; nothing here starts the units.
Run: python3 deploy/systemd/check.py
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
UNITS = {"shoal-tracker.service": "tracker", "shoal-seeder.service": "seeder", "shoal-shim.service": "shim"}
# Directive=value lines every unit must carry.
REQUIRED = [
    "DynamicUser=yes",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectControlGroups=yes",
    "RestrictSUIDSGID=yes",
    "RestrictNamespaces=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "CapabilityBoundingSet=",
    "SystemCallFilter=@system-service",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
]


def main():
    failures = []
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        sys.exit("check.py: systemd-analyze not found (.ci/packages.txt lists systemd)")
    shoal = os.environ.get("SHOAL_BIN", os.path.join(ROOT, "target", "debug", "shoal"))
    if not os.access(shoal, os.X_OK):
        sys.exit(f"check.py: no shoal binary at {shoal} (cargo build --bin shoal, or set SHOAL_BIN)")
    shoal = os.path.abspath(shoal)
    for unit, command in UNITS.items():
        with open(os.path.join(HERE, unit)) as f:
            text = f.read()
        lines = [l.strip() for l in text.splitlines() if l.strip() and not l.startswith("#")]
        for needed in REQUIRED + [f"ExecStart=/usr/local/bin/shoal {command}",
                                  f"EnvironmentFile=-/etc/shoal/{command}.env"]:
            if needed not in lines:
                failures.append(f"{unit}: lacks `{needed}`")
        if command != "tracker":
            state = f"shoal-{command}"
            if f"StateDirectory={state}" not in lines:
                failures.append(f"{unit}: lacks StateDirectory={state}")
            if f"Environment=SHOAL_{command.upper()}_DATA_DIR=%S/{state}" not in lines:
                failures.append(f"{unit}: its data dir is not the StateDirectory")
        help_text = subprocess.run([shoal, command, "--help"], check=True, capture_output=True, text=True).stdout
        twins = set(re.findall(r"\[env: ([A-Z0-9_]+)", help_text))
        for name in re.findall(r"^Environment=([A-Z0-9_]+)=", text, re.M):
            if name not in twins:
                failures.append(f"{unit}: sets {name}, not an env twin of `shoal {command}`")
        # verify checks that ExecStart's binary exists: point it at the one built here.
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, unit)
            with open(copy, "w") as f:
                f.write(text.replace("/usr/local/bin/shoal", shoal))
            out = subprocess.run([analyze, "verify", "--man=no", copy], capture_output=True, text=True)
            said = (out.stdout + out.stderr).strip()
            if out.returncode != 0 or said:
                failures.append(f"{unit}: systemd-analyze verify (exit {out.returncode}): {said}")
        print(f"{unit}: checked")
    for f in failures:
        print(f"FAIL {f}")
    if failures:
        sys.exit(1)
    print(f"check.py: {len(UNITS)} units verified")


if __name__ == "__main__":
    main()
