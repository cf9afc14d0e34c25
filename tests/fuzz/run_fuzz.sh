#!/usr/bin/env bash
# run_fuzz.sh SECONDS TARGET... — runs each built libFuzzer target (build-fuzz/fuzz_TARGET, see `make fuzz`)
# for SECONDS, one after another (never in parallel: the machine's cores are shared), at nice 10.
#
# The working corpus is build-fuzz/corpus/TARGET (new inputs go there), seeded from tests/fuzz/corpus/TARGET
# and tests/fuzz/regress/TARGET. libFuzzer stops at the first finding, so a target is restarted until its
# time is spent (at most 20 findings each). Inputs are up to 8 KB (2 KB for the tokenizer). Findings
# (crash-*, timeout-*, oom-*, leak-*) and the log of the run that found each land in build-fuzz/findings/TARGET/;
# copy a minimised one into tests/fuzz/regress/TARGET/ to keep it.
# Prints one line per target: executions and findings. Exits non-zero if any target had a finding.
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:?usage: run_fuzz.sh SECONDS TARGET...}
shift
total_findings=0
summary=()
for t in "$@"; do
    bin=build-fuzz/fuzz_$t
    [ -x "$bin" ] || { echo "run_fuzz.sh: $bin is not built (make fuzz-build)" >&2; exit 2; }
    work=build-fuzz/corpus/$t
    out=build-fuzz/findings/$t
    mkdir -p "$work" "$out"
    seeds=()
    for d in tests/fuzz/corpus/$t tests/fuzz/regress/$t; do [ -d "$d" ] && seeds+=("$d"); done
    max_len=8192
    opts=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=$max_len
          -print_final_stats=1 -artifact_prefix="$out/")
    [ -f "tests/fuzz/$t.dict" ] && opts+=(-dict="tests/fuzz/$t.dict")
    execs=0 findings=0 start=$SECONDS
    for round in $(seq 1 20); do
        left=$((seconds - (SECONDS - start)))
        [ "$left" -gt 0 ] || break
        log=$out/log-$(date +%Y%m%d-%H%M%S)-$round.txt
        before=$(ls "$out" | grep -cE '^(crash|timeout|oom|leak)-')
        nice -n 10 "$bin" "${opts[@]}" -max_total_time="$left" "$work" "${seeds[@]}" >"$log" 2>&1
        rc=$?
        n=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
        [ -n "$n" ] || n=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
        execs=$((execs + ${n:-0}))
        after=$(ls "$out" | grep -cE '^(crash|timeout|oom|leak)-')
        if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
            findings=$((findings + 1))
            echo "fuzz_$t: finding (exit $rc), log $log:" >&2
            grep -m1 -E 'ERROR: |FINDING: |runtime error: |==[0-9]+==' "$log" >&2
            ls -t "$out" | grep -E '^(crash|timeout|oom|leak)-' | head -1 | sed "s|^|  input: $out/|" >&2
        else
            rm -f "$log"
            break
        fi
    done
    total_findings=$((total_findings + findings))
    line=$(printf 'fuzz_%-12s %12d executions in %5d s, %d findings' "$t" "$execs" $((SECONDS - start)) "$findings")
    echo "$line"
    summary+=("$line")
done
echo "---- fuzz summary ----"
printf '%s\n' "${summary[@]}"
[ "$total_findings" -eq 0 ]
