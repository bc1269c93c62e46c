#!/usr/bin/env python3
"""Restore package-lock.json entries for platform builds this registry does not serve.

Packages such as @biomejs/biome and @napi-rs/canvas list one optional
dependency per platform. The registry reached from these machines answers 404
for the builds of other platforms, so `npm install` leaves them out of the
lockfile, and then `npm ci` refuses the lockfile ("Missing: … from lock file").
This script adds an entry for each missing one, with os/cpu/libc read from its
name, so that `npm ci` accepts the lockfile and skips those builds here as it
would anyway. Run it after any `npm install` that rewrites the lockfile:

    python3 scripts/lock-platforms.py
"""
import json
import re
import subprocess

missing = re.findall(r"Missing: (\S+)@ from lock file", subprocess.run(["npm", "ci", "--dry-run"], capture_output=True, text=True).stderr)
lock = json.load(open("package-lock.json"))
packages = lock["packages"]
for name in missing:
    parent = next(e for e in packages.values() if name in e.get("optionalDependencies", {}))
    base = name.split("/")[-1]
    entry = {"version": parent["optionalDependencies"][name]}
    oses = [o for o in ["android", "darwin", "linux", "win32", "freebsd"] if re.search(rf"-{o}(-|$)", base)]
    cpus = [c for c in ["arm64", "x64", "arm", "riscv64", "ia32"] if re.search(rf"-{c}(-|$)", base)]
    if oses:
        entry["os"] = oses
    if cpus:
        entry["cpu"] = cpus
    if "musl" in base:
        entry["libc"] = ["musl"]
    elif oses == ["linux"]:
        entry["libc"] = ["glibc"]
    if parent.get("dev"):
        entry["dev"] = True
    entry["optional"] = True
    packages[f"node_modules/{name}"] = entry
    print("added", name, entry["version"])
lock["packages"] = dict(sorted(packages.items(), key=lambda kv: (kv[0] != "", kv[0])))
with open("package-lock.json", "w") as f:
    json.dump(lock, f, indent=2)
    f.write("\n")
