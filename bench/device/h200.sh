#!/usr/bin/env bash
# One device call on one H200: the GPU tests, then `helico bench d3pm` beside PyTorch (eager
# and torch.compile) with a Kineto profile of helico's step. Run from the repository root of
# the device's copy, with the bundle staged in $B (../shared/tools/gpu-bundle --tests --dest $B,
# plus bench/d3pm_torch.py copied in) and data/demo carried. Results go to $OUT.
set -u
B=${B:-.gpu-e}
source "$B/env.sh"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$OUT/nvidia-smi.txt" 2>&1
# The test binary holds its build-time paths: the repository root and target/release/helico.
# (built in /work/main; ROOT overrides)
mkdir -p /work && ln -sfn "$PWD" "${ROOT:-/work/main}"
mkdir -p target/release && cp "$B/helico" target/release/helico
cp "$B/d3pm_torch.py" bench/d3pm_torch.py
T=$(ls "$B"/test-tests-* | head -1)
if [ "${TESTS:-1}" = 1 ]; then
  echo "== GPU tests: $T --include-ignored --test-threads 1 gpu:: (two-GPU tests skipped)"
  timeout 300 "$T" --include-ignored --test-threads 1 gpu:: --skip one_and_two --skip a_dying_rank > "$OUT/gpu-tests.log" 2>&1
  echo "exit $?"; grep -E "^test |test result|panicked|relative error" "$OUT/gpu-tests.log"
fi
echo "== bench"
timeout "${BENCH_TIMEOUT:-420}" "$B/helico" bench d3pm experiments/atomwell.toml ${BENCH_ARGS:-} \
  --steps "${STEPS:-10}" --warmup "${WARMUP:-2}" --profile --out "$OUT" > "$OUT/bench.log" 2>&1
echo "exit $?"; grep -vE "^\| \`" "$OUT/bench.log" | tail -60
