#!/bin/sh
# Summarises a CSV with a header row as JSON: rows, columns, and the sum, minimum and maximum of
# every column whose values are all numbers. Usage: csv_summary.sh INPUT OUTPUT KEY
# A file without a header or with rows of another width fails (exit 3) with a message on stderr,
# which sluice puts in the task's failure notification.
set -eu
in=$1 out=$2 key=$3
awk -F, -v key="$key" '
  function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
  { sub(/\r$/, "") }
  NR == 1 {
    if (NF < 2) { print "no header row with two or more columns in " key > "/dev/stderr"; exit 3 }
    ncol = NF
    for (i = 1; i <= NF; i++) { name[i] = $i; numeric[i] = 1 }
    next
  }
  $0 == "" { next }
  NF != ncol { printf "row %d has %d fields, the header has %d\n", NR, NF, ncol > "/dev/stderr"; bad = 1; exit 3 }
  {
    rows++
    for (i = 1; i <= NF; i++) {
      if ($i !~ /^-?[0-9]+(\.[0-9]+)?$/) { numeric[i] = 0; continue }
      sum[i] += $i
      if (!(i in min) || $i + 0 < min[i]) min[i] = $i + 0
      if (!(i in max) || $i + 0 > max[i]) max[i] = $i + 0
    }
  }
  END {
    if (bad || ncol == 0) exit 3
    printf "{\"source\": %s, \"rows\": %d, \"columns\": [", jstr(key), rows
    for (i = 1; i <= ncol; i++) printf "%s%s", (i > 1 ? ", " : ""), jstr(name[i])
    printf "], \"numeric\": {"
    n = 0
    for (i = 1; i <= ncol; i++) {
      if (!numeric[i] || rows == 0) continue
      printf "%s%s: {\"sum\": %.10g, \"min\": %.10g, \"max\": %.10g}", (n++ ? ", " : ""), jstr(name[i]), sum[i], min[i], max[i]
    }
    print "}}"
  }' "$in" > "$out"
