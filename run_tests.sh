#!/usr/bin/env bash
# Runs the test suite, as DosNa's run_tests.sh does:
#   run_tests.sh [--backend B] [--engine E] [--cache on|off] [--connection NAME] [--connection-options k=v ...] [-- vitest args]
# With no --backend/--engine it runs every registered backend x engine. Services the chosen
# backends need (e.g. a Ceph RGW) are started by the test suite's global setup.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'HELP'
Options:
  --backend B               only this backend (repeat or comma-separate for several)
  --engine E                only this engine (repeat or comma-separate for several)
  --cache on|off            run the conformance suite only with the chunk cache on, or off (default: both)
  --connection NAME         base name of the test connections (folder, bucket)
  --connection-options k=v  extra connection options, e.g. directory=/data endpoint=http://...
  --                        pass the rest to vitest (e.g. -- test/core.test.ts -t slicing)
HELP
}

backends=()
engines=()
connection=""
declare -A conn_options=()
vitest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backends+=("${2:?--backend needs a value}"); shift 2 ;;
    --backend=*) backends+=("${1#*=}"); shift ;;
    --engine) engines+=("${2:?--engine needs a value}"); shift 2 ;;
    --engine=*) engines+=("${1#*=}"); shift ;;
    --cache) export DOSNA_TEST_CACHE="${2:?--cache needs on or off}"; shift 2 ;;
    --cache=*) export DOSNA_TEST_CACHE="${1#*=}"; shift ;;
    --connection) connection="${2:?--connection needs a value}"; shift 2 ;;
    --connection=*) connection="${1#*=}"; shift ;;
    --connection-options)
      shift
      while [ $# -gt 0 ] && [[ "$1" == *=* ]] && [[ "$1" != --* ]]; do
        conn_options["${1%%=*}"]="${1#*=}"; shift
      done ;;
    -h|--help) usage; exit 0 ;;
    --) shift; vitest_args+=("$@"); break ;;
    *) echo "run_tests.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

bash scripts/bootstrap.sh
export PATH="$PWD/node_modules/.bin:$PATH"

join() { local IFS=,; echo "$*"; }
[ ${#backends[@]} -gt 0 ] && export DOSNA_TEST_BACKENDS="$(join "${backends[@]}")"
[ ${#engines[@]} -gt 0 ] && export DOSNA_TEST_ENGINES="$(join "${engines[@]}")"
[ -n "$connection" ] && export DOSNA_TEST_CONNECTION="$connection"
if [ ${#conn_options[@]} -gt 0 ]; then
  json="{"
  for k in "${!conn_options[@]}"; do
    v="${conn_options[$k]}"
    # Numbers and booleans stay typed; everything else is a string.
    if [[ "$v" =~ ^-?[0-9]+(\.[0-9]+)?$ || "$v" == true || "$v" == false ]]; then json+="\"$k\":$v,"; else json+="\"$k\":\"${v//\"/\\\"}\","; fi
  done
  export DOSNA_TEST_CONNECTION_OPTIONS="${json%,}}"
fi

# A backend's own test file belongs to runs that include that backend (the conformance suite
# narrows itself through DOSNA_TEST_BACKENDS). Nothing is skipped: files are left out.
excludes=()
if [ ${#backends[@]} -gt 0 ]; then
  for b in hdf5 s3 ceph zarr; do
    [[ ",${DOSNA_TEST_BACKENDS}," == *",$b,"* ]] || excludes+=(--exclude "test/$b.test.ts" --exclude "test/$b-*.test.ts")
  done
  # Several processes need a backend they share: nothing to run on ram alone.
  [[ ",${DOSNA_TEST_BACKENDS}," =~ ,(hdf5|s3|ceph|zarr), ]] || excludes+=(--exclude test/concurrent-writers.test.ts)
fi

report=.vitest-report.json
rm -f "$report" .vitest-extra-failures.json
status=0
vitest run --reporter=default --reporter=json --outputFile.json="$report" "${excludes[@]}" "${vitest_args[@]}" || status=$?
node scripts/summarize-vitest.mjs "$report" || status=1
exit $status
