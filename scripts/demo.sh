#!/usr/bin/env bash
# The main job, as a new user runs it: installs what is missing, builds sluice, ingests real
# manuals (or the paths you give) and searches them in English and Chinese.
#
# Usage: scripts/demo.sh [PATH...]       (data goes to ./sluice-data, or $SLUICE_DATA)
# Without PATH it ingests manuals Debian ships, installing them when missing: the R manuals (PDF,
# r-doc-pdf), the Python library reference (HTML, python3-doc) and the Debian Edu manual in
# Simplified Chinese (HTML, debian-edu-doc-zh-cn).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build sluice >/dev/null

SLUICE=./build/sluice
DATA=${SLUICE_DATA:-./sluice-data}
if (($# == 0)); then
  bash scripts/setup.sh --manuals
  set -- /usr/share/doc/r-doc-pdf/manual \
    /usr/share/doc/python3-doc/html/library \
    /usr/share/doc/debian-edu-doc-zh-cn/debian-edu-bookworm-manual.html
fi

echo "== sluice ingest $*"
status=0
"$SLUICE" ingest "$@" --data "$DATA" || status=$?
if ((status != 0 && status != 3)); then exit "$status"; fi  # 3: some files failed, listed above

search() {
  echo
  echo "== sluice search \"$1\""
  "$SLUICE" search "$1" --data "$DATA" -k 3
}
search "how do I read a CSV file into a data frame"
search "compare two floating point numbers for approximate equality"
search "如何配置 LTSP 瘦客户端"

echo
echo "== a second run skips what is unchanged"
"$SLUICE" ingest "$@" --data "$DATA" --progress none | tail -n 4
