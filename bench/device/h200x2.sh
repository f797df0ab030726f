#!/usr/bin/env bash
# One device call on 2 (or 4) H200s: the two-GPU tests, then data-parallel scaling of
# experiments/atomwell.toml (bench/ddp_scaling.py). Staging as bench/device/h200.sh. GPUS
# picks the counts (default 1,2; `2:key=value` adds a row with overrides of its own), OVERRIDES adds
# experiment overrides to every row. Results go to $OUT.
set -u
B=${B:-.gpu-e}
source "$B/env.sh"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/nvidia-smi.txt" 2>&1
nvidia-smi topo -m >> "$OUT/nvidia-smi.txt" 2>&1
# (built in /work/main; ROOT overrides)
mkdir -p /work && ln -sfn "$PWD" "${ROOT:-/work/main}"
mkdir -p target/release && cp "$B/helico" target/release/helico
T=$(ls "$B"/test-tests-* | head -1)
if [ "${TESTS:-1}" = 1 ]; then
  # Every GPU test by default (the two-GPU ones included); TEST_FILTER narrows it.
  echo "== GPU tests: $T --ignored --test-threads 1 ${TEST_FILTER:-gpu::}"
  timeout "${TESTS_TIMEOUT:-300}" "$T" --ignored --test-threads 1 ${TEST_FILTER:-gpu::} > "$OUT/gpu-tests.log" 2>&1
  echo "exit $?"; grep -E "^test |test result|panicked|loss|buckets" "$OUT/gpu-tests.log" | head -40
fi
echo "== scaling"
timeout "${SCALING_TIMEOUT:-300}" python3 "$B/ddp_scaling.py" --helico "$B/helico" --gpus "${GPUS:-1,2}" \
  --steps "${STEPS:-12}" --out "$OUT" experiments/atomwell.toml schedule.warmup_steps=2 optimizer.lr=1e-4 \
  ${OVERRIDES:-} \
  > "$OUT/scaling.log" 2>&1
echo "exit $?"; head -12 "$OUT/scaling.log"; grep -A5 "^| GPUs" "$OUT/scaling.log"
