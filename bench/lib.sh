# shellcheck shell=bash
# bench/lib.sh: the command line every bench/run_*_bench.sh takes, parsed in one place. A script
# sources it after `set -euo pipefail` and calls `bench_parse NAME "$@"` (NAME: "run_s3_bench",
# for messages), which sets:
#   QUICK=1      for --quick (a smoke run; its figures are not comparable with the targets)
#   REPEATS=N    for --repeats N (empty when not given; bench_repeats FULL QUICK fills it)
#   EXTRA=(...)  the words after `--`, for the benchmark program
#   BENCH_ARG    the one positional argument (a program or a build directory), or empty
# and prints the script's header comment for -h/--help (exit 0). A script's own options go first to
# its function `bench_option WORD [NEXT]`, when it defines one: it sets BENCH_TOOK to the words it
# used (1, or 2 with a value) and leaves it 0 for a word it does not know. Any other option, or a
# second positional argument, is refused with exit 2. ROOT is the source tree.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUICK=0
REPEATS=""
EXTRA=()
BENCH_ARG=""
BENCH_TOOK=0

bench_parse() {
  local name=$1
  shift
  while (($#)); do
    BENCH_TOOK=0
    if declare -F bench_option >/dev/null; then bench_option "$@"; fi
    if ((BENCH_TOOK > 0)); then
      shift "$BENCH_TOOK"
      continue
    fi
    case "$1" in
      --quick) QUICK=1 ;;
      --repeats)
        if (($# < 2)) || ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
          echo "$name: --repeats needs a whole number of runs (1 or more)" >&2
          exit 2
        fi
        REPEATS=$2
        shift
        ;;
      -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
      --)
        shift
        EXTRA=("$@")
        break
        ;;
      -*)
        echo "$name: unknown option $1 (see --help)" >&2
        exit 2
        ;;
      *)
        if [[ -n "$BENCH_ARG" ]]; then
          echo "$name: one path at most ($BENCH_ARG, then $1; see --help)" >&2
          exit 2
        fi
        BENCH_ARG=$1
        ;;
    esac
    shift
  done
}

# bench_repeats FULL QUICK_RUNS: REPEATS as --repeats gave it, else FULL (QUICK_RUNS with --quick).
bench_repeats() {
  if [[ -z "$REPEATS" ]]; then
    if ((QUICK)); then REPEATS=$2; else REPEATS=$1; fi
  fi
}
