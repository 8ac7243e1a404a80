#!/usr/bin/env bash
# Puts one benchmark's Markdown section into BENCHMARKS.md: `scripts/bench-section.sh NAME < section.md`.
# Each `make bench-*` target measures its rows (ours and the reference, in the same run) and hands
# its section here; the section between <!-- bench:NAME:begin --> and <!-- bench:NAME:end --> is
# replaced, other sections are kept, and the header names the machine and the date of this run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
name="$1"
file="$root/BENCHMARKS.md"
body="$(cat)"
# A benchmark that printed nothing failed: keep the old section rather than write an empty one.
if [ -z "${body//[[:space:]]/}" ]; then
  echo "bench-section.sh: section '$name' got no rows (its benchmark failed); BENCHMARKS.md unchanged" >&2
  exit 1
fi
python3 - "$file" "$name" "$body" <<'PY'
import os, platform, re, subprocess, sys, datetime
path, name, body = sys.argv[1], sys.argv[2], sys.argv[3]
def sh(cmd):
    try: return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return ""
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip() or platform.processor()
mem = sh("free -g | awk '/Mem:/{print $2\" GiB\"}'")
header = ("# Benchmarks\n\n"
  "Written by `make bench` (each `make bench-*` target replaces its own section). Every row gives "
  "ours beside a reference measured in the same run on the same machine, and the ratio; no test "
  "asserts a time.\n\n")
text = open(path).read() if os.path.exists(path) else header
begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
stamp = (f"_Measured {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on "
         f"{os.cpu_count()} cores ({cpu}), {mem}, {platform.system()} {platform.machine()}._\n\n")
section = f"{begin}\n{stamp}{body.strip()}\n{end}"
if begin in text:
    text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda m: section, text, flags=re.S)
else:
    text = text.rstrip() + "\n\n" + section + "\n"
open(path, "w").write(text if text.endswith("\n") else text + "\n")
PY
echo "BENCHMARKS.md: section '$name' updated" >&2
