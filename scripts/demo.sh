#!/usr/bin/env bash
# Installs what is missing, builds sluice, and runs the main job on a folder (default: src/).
#
# The document pipeline (parse, chunk, embed, index) is the next piece of work; until it lands,
# the main job shows its first half on the embedded log: every file in the folder becomes one
# task on the doc_upload topic (keyed by its path, so one document always lands on one
# partition), a worker group reads the tasks back, and the group's lag shows they were consumed.
# Usage: scripts/demo.sh [FOLDER]     (data goes to ./sluice-data, or $SLUICE_DATA)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build sluice >/dev/null

FOLDER=${1:-src}
DATA=${SLUICE_DATA:-./sluice-data}
SLUICE=./build/sluice
[[ -d "$FOLDER" ]] || { echo "demo: '$FOLDER' is not a folder" >&2; exit 2; }

echo "== one task per file in $FOLDER -> topic doc_upload"
python3 - "$FOLDER" <<'PY' | "$SLUICE" produce doc_upload --data "$DATA" --create --partitions 3 --key-sep $'\t'
import json, os, sys
for root, _, files in os.walk(sys.argv[1]):
    for name in sorted(files):
        path = os.path.join(root, name)
        task = {"uri": "file://" + os.path.abspath(path), "size": os.path.getsize(path)}
        print(path + "\t" + json.dumps(task, ensure_ascii=False))
PY

echo "== topics"
"$SLUICE" topics --data "$DATA"

echo "== the worker group 'demo-workers' reads the tasks (first 5 shown)"
"$SLUICE" tail doc_upload --data "$DATA" --group demo-workers --from-beginning --timeout 1 >/tmp/sluice-demo-tail.jsonl
head -n 5 /tmp/sluice-demo-tail.jsonl
echo "... $(wc -l </tmp/sluice-demo-tail.jsonl) tasks read"

echo "== the group's offsets: lag 0 means every task was consumed and committed"
"$SLUICE" groups demo-workers --data "$DATA"
