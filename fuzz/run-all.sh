#!/usr/bin/env bash
# Runs every fuzz target in turn, one process each (the machine is shared): ./run-all.sh [SECONDS]
# SECONDS is the time per target (default 120). Each target is one process with one thread
# (libFuzzer's default; -jobs/-workers would only add processes and hide the stats in fuzz-N.log). Corpora grow in fuzz/corpus/<target>, crashes land
# in fuzz/artifacts/<target>; each target's libFuzzer log is fuzz/logs/<target>.log.
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain RUSTC_BOOTSTRAP=1 unlocks the
# -Z flags cargo-fuzz passes; with a nightly toolchain installed, FUZZ_TOOLCHAIN=+nightly works too.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-120}"
fixtures="$PWD/../tests/fixtures/mal"
anilist="$PWD/../tests/fixtures/anilist"
export RUSTC_BOOTSTRAP=1
cargo_fuzz=(cargo ${FUZZ_TOOLCHAIN:-} fuzz)

declare -A seeds=(
  [list_page]="$fixtures"
  [list_status]="$fixtures"
  [my_status]="$fixtures"
  [search]="$fixtures"
  [details]="$fixtures"
  [user]="$fixtures"
  [error_body]="$fixtures seeds/token"
  [token]="$fixtures seeds/token"
  [config]="seeds/config"
  [pasted]="seeds/pasted"
  [anilist_collection]="$anilist"
  [anilist_details]="$anilist"
  [anilist_search]="$anilist"
  [anilist_classify]="$anilist"
  [anilist_token]="seeds/pasted seeds/token"
)
declare -A dicts=(
  [list_page]=json [list_status]=json [my_status]=json [search]=json [details]=json [user]=json
  [error_body]=json [token]=json
  [config]=toml [pasted]=url
  [anilist_collection]=anilist [anilist_details]=anilist [anilist_search]=anilist
  [anilist_classify]=anilist [anilist_token]=anilist
)
mkdir -p logs
# The shipped example config is a seed too (libFuzzer takes folders only).
mkdir -p corpus/config && cp ../config.example.toml corpus/config/config.example.toml

"${cargo_fuzz[@]}" build -O
for target in ${TARGETS:-list_page list_status my_status search details user error_body token config pasted anilist_collection anilist_details anilist_search anilist_classify anilist_token}; do
  mkdir -p "corpus/$target"
  # shellcheck disable=SC2086
  "${cargo_fuzz[@]}" run -O "$target" "corpus/$target" ${seeds[$target]} -- \
    -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 \
    -max_len=16384 -dict="dicts/${dicts[$target]}.dict" -print_final_stats=1 \
    >"logs/$target.log" 2>&1 || echo "$target: FAILED (see logs/$target.log)"
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$target.log" | grep -o '[0-9]*$' || true)
  echo "$target: ${runs:-?} inputs in ${secs}s"
done
