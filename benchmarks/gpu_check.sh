#!/usr/bin/env bash
# scglassbox's GPU checks as ONE command, run on the lent GPU machine (nvidia-h200: one H200,
# 16 cores, Python 3.12 with torch, no network) from the repository root, with the wheels of
# benchmarks/gpu_wheels.sh carried in .whl/ (see DEVELOPERS.md, "GPU checks"):
#
#   bash benchmarks/gpu_check.sh            # all steps: exactness 100k local 1m
#   bash benchmarks/gpu_check.sh 1m         # only the 1,000,000-cell stages (the second call)
#
# Each step runs under `timeout`, logs to $OUT/<step>.log (at most 8 files come back) and is
# recorded in $OUT/summary.txt; the script ends within GPU_CHECK_BUDGET_S (default 555) of its
# start, so the device call's timeout_s=600 leaves room for the start and the transfers.
#
#   1. install .whl/*.whl into /tmp/site (once per machine), PYTHONPATH=/tmp/site:src
#   2. in the background, in its own session (it outlives this command on a warm machine), on
#      cores 8-15: `scale.py --prepare` of the 1M data set (simulate, normalise, PCA, graph)
#   3. env: nvidia-smi, torch/CUDA, package versions, an import check (abort if it fails)
#   4. exactness: tests/test_contributions.py -k "gpu or cuda" (the GPU training and
#      contributions test; it must pass, not skip)                          cap 120 s
#   5. 100k: scale.py --sizes 100000 --stages fit contributions            cap 270 s
#   6. local: local_structure.py on synthetic_20k, variants default wide512x4 deep4x4 routed_s64, no
#      baselines (a bare --baselines is an empty list; the CPU baselines are measured on the
#      2-core machine already); records to $OUT/local_structure.jsonl       cap 240 s
#   5b. profile: gpu_profile.py on the 100k set: cProfile of the default fit, then a
#      kNN-vs-time curve of encoder and step sizes (GPU_CHECK_CURVE_S, default 200;
#      GPU_CHECK_CONFIGS: which of gpu_profile.py's CONFIGS, default all)   cap 300 s
#   GPU_CHECK_EXACTNESS_BG=1 runs step 4 beside step 5.
#   7. 1m: wait for step 2, then scale.py --sizes 1000000 --stages fit contributions on all
#      cores, if GPU_CHECK_BIG_STAGES_S (240) are left; runs before 6 if the data is ready.
#
# Expected time on the H200 (estimates, nothing here has run on it yet): install + env 20 s,
# exactness 30-60 s, 100k 2.5-3.5 min (its data preparation is most of it), local 2-3 min: about
# 6-7 min in all. The 1M data preparation took about 15 min on 2 cores; its simulation and
# ARPACK PCA are single-threaded, so expect 6-9 min on the device, in the background from the
# start, and 3-4 min for the 1M fit and contributions (7.6 GB read twice, 15 GB written). All of
# it fits one 10-minute command only if the preparation ends by about 5 min; otherwise this
# command ends after step 6 (or at its budget) printing NEXT, and the second call
# `bash benchmarks/gpu_check.sh 1m` (at once: the machine stays warm for 30 s, and the
# preparation keeps running in between) waits for the data and runs step 7: about 12-14 min of
# device time for both calls, start included.
#
# Local plumbing test on CPU (tiny sizes: 2,000 and 3,000 cells, wine; about 3-4 min on 2 cores):
#   GPU_CHECK_ACCELERATOR=cpu bash benchmarks/gpu_check.sh     # logs in /tmp/gpu_check_out
# Knobs: GPU_CHECK_BUDGET_S, GPU_CHECK_BIG_STAGES_S, GPU_CHECK_SMALL, GPU_CHECK_BIG,
# GPU_CHECK_NO_DISK=1 (1M contributions not written), GPU_CHECK_PYTHON, GPU_CHECK_SITE,
# GPU_CHECK_KEEP_PREP=1 (on CPU too, the preparation outlives the command, as on the GPU).
set -uo pipefail # no -e: a failed step is recorded and the next one runs
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$SECONDS
ACC=${GPU_CHECK_ACCELERATOR:-gpu}
PY=${GPU_CHECK_PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET_S:-555}
DEADLINE=$((START + BUDGET))
RESERVE_BIG=${GPU_CHECK_BIG_STAGES_S:-240}
SITE=${GPU_CHECK_SITE:-/tmp/site}
if [[ $ACC == gpu ]]; then
  SMALL=100000 BIG=1000000 WORK=/tmp/scale_gpu
  LS_ARGS=(--datasets synthetic_20k --variants default wide512x4 deep4x4 routed_s64)
  TARGETS="100000:5 1000000:60" # cells:seconds for the fit on one GPU (docs/performance.md)
else
  SMALL=2000 BIG=3000 WORK=/tmp/gpu_check_cpu/scale
  LS_ARGS=(--datasets wine --variants default --cache /tmp/gpu_check_cpu/cache)
  TARGETS=""
fi
SMALL=${GPU_CHECK_SMALL:-$SMALL}
BIG=${GPU_CHECK_BIG:-$BIG}
if [[ -z ${OUT:-} ]]; then # not on the device (there, $OUT comes empty)
  OUT=/tmp/gpu_check_out
  rm -rf "$OUT"
fi
mkdir -p "$OUT" "$WORK"
rm -f "$OUT/local_structure.jsonl"
SUMMARY=$OUT/summary.txt
STEPS=("$@")
((${#STEPS[@]})) || STEPS=(exactness 100k local 1m)
want() { [[ " ${STEPS[*]} " == *" $1 "* ]]; }
note() { echo "[$(date -u +%T) +$((SECONDS - START))s] $*" | tee -a "$SUMMARY"; }
: >"$SUMMARY"
note "gpu_check: steps ${STEPS[*]}; accelerator $ACC; sizes $SMALL $BIG; budget ${BUDGET}s"

# 1. Wheels (cp312 builds for the GPU machine: skipped under any other Python).
if compgen -G ".whl/*.whl" >/dev/null \
  && "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
  stamp=$(ls .whl | cksum)
  if [[ $(cat "$SITE/.gpu_check_stamp" 2>/dev/null) != "$stamp" ]]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" .whl/*.whl || { note "ABORT: wheels did not install"; exit 1; }
    echo "$stamp" >"$SITE/.gpu_check_stamp"
  fi
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
  note "wheels from .whl/ in $SITE"
else
  note "no .whl/ for this Python: using $PY's own packages"
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$ROOT/src PYTHONUNBUFFERED=1 MPLBACKEND=Agg
imports() { "$PY" -c 'import pandas, anndata, scanpy, umap, pynndescent, scglassbox' 2>&1; }
if ! err=$(imports); then
  if [[ -d $SITE/pandas ]]; then # the carried pandas 2.3.3 (anndata pins <3) will not import
    note "carried pandas fails to import (${err##*$'\n'}); falling back to the image's"
    rm -rf "$SITE"/pandas "$SITE"/pandas-*.dist-info
    err=$(imports) || { note "ABORT: imports fail: ${err##*$'\n'}"; exit 1; }
  else
    note "ABORT: imports fail: ${err##*$'\n'}"
    exit 1
  fi
fi

# Cores: while the 1M preparation runs beside the other steps, each gets half the machine.
NCPU=$(nproc)
FG=() BG=()
if ((NCPU >= 16)) && command -v taskset >/dev/null; then
  half=$((NCPU / 2))
  t=$half
  FG=(taskset -c "0-$((half - 1))" env OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t
    OPENBLAS_NUM_THREADS=$t NUMBA_NUM_THREADS=$t)
  t=$((NCPU - half))
  BG=(taskset -c "$half-$((NCPU - 1))" env OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t
    OPENBLAS_NUM_THREADS=$t NUMBA_NUM_THREADS=$t)
fi

# 2. The 1M data set, prepared in the background in a session of its own.
DATA=$WORK/data_$BIG.h5ad PREP=$WORK/prep_$BIG
prep_running() { [[ -f $PREP.pid ]] && kill -0 "$(cat "$PREP.pid")" 2>/dev/null; }
prep_done() { [[ -f $DATA ]] && { [[ $(cat "$PREP.rc" 2>/dev/null) == 0 ]] || [[ ! -f $PREP.pid ]]; }; }
start_prep() {
  prep_done && { note "prep $BIG: data already there"; return; }
  prep_running && { note "prep $BIG: still running (pid $(cat "$PREP.pid"))"; return; }
  rm -f "$DATA" "$PREP.rc"
  local -a pin=()
  want 100k || want local || want exactness && pin=("${BG[@]}")
  # A subshell that execs: $! is the session leader's pid (setsid needs no fork there).
  (exec "${pin[@]}" setsid bash -c 'echo "prep start $(date -u +%T)"
    "$0" benchmarks/scale.py --prepare --sizes "$1" --workdir "$2"; rc=$?
    echo "prep end $(date -u +%T) rc=$rc"; echo $rc >"$3.rc.tmp"; mv "$3.rc.tmp" "$3.rc"' \
    "$PY" "$BIG" "$WORK" "$PREP") </dev/null >"$PREP.log" 2>&1 &
  echo $! >"$PREP.pid"
  note "prep $BIG: started in the background (pid $!, ${pin[*]:-all cores})"
}
# Wait for the preparation until second $1; 0 ready, 1 failed, 2 not yet.
wait_prep() {
  while :; do
    if prep_done; then
      cp "$PREP.log" "$OUT/prep_$BIG.log" 2>/dev/null
      return 0
    fi
    if ! prep_running; then
      prep_done && continue # it ended between the two checks
      cp "$PREP.log" "$OUT/prep_$BIG.log" 2>/dev/null
      note "prep $BIG: FAILED (rc $(cat "$PREP.rc" 2>/dev/null || echo none)); see prep_$BIG.log"
      rm -f "$DATA"
      return 1
    fi
    if ((SECONDS >= $1)); then
      cp "$PREP.log" "$OUT/prep_$BIG.log" 2>/dev/null
      return 2
    fi
    sleep 5
  done
}
if [[ $ACC == cpu && -z ${GPU_CHECK_KEEP_PREP:-} ]]; then # local test: leave nothing behind
  trap 'prep_running && kill -- -"$(cat "$PREP.pid")" 2>/dev/null' EXIT
fi
want 1m && start_prep
prep_running || FG=() # nothing beside the steps: all cores for them

# One step: its own timeout (at most $2 s and what the budget leaves), log, summary line.
step() {
  local name=$1 cap=$2 left
  shift 2
  left=$((DEADLINE - SECONDS))
  ((cap > left)) && cap=$left
  if ((cap < 30)); then
    note "$name: SKIPPED (${left}s of the budget left)"
    return 1
  fi
  local t0=$SECONDS rc
  timeout -k 10 "$cap" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  local verdict=ok
  if ((rc == 124 || rc == 137)); then
    verdict="TIMED OUT at ${cap}s"
  elif ((rc != 0)); then
    verdict=FAILED
  fi
  note "$name: $verdict (rc $rc, $((SECONDS - t0))s); last lines of $name.log:"
  tail -n "${TAIL:-8}" "$OUT/$name.log" | sed 's/^/    /' | tee -a "$SUMMARY"
  return $rc
}

# 3. Environment.
{
  date -u
  uname -srm
  echo "cores $NCPU"
  free -g
  df -h /tmp "$ROOT"
  command -v nvidia-smi >/dev/null && nvidia-smi
  "$PY" - <<'EOF'
import importlib.metadata as md
import sys

import torch

print(sys.version)
print("torch", torch.__version__, "CUDA", torch.version.cuda, "cudnn",
      torch.backends.cudnn.version(), "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))
for name in ("numpy", "scipy", "pandas", "scikit-learn", "numba", "llvmlite", "h5py",
             "matplotlib", "lightning", "pytorch-lightning", "anndata", "scanpy", "umap-learn",
             "pynndescent", "zarr"):
    try:
        print(f"{name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name} MISSING")
import pandas, scanpy  # noqa: E401
print("pandas from", pandas.__file__, "; scanpy from", scanpy.__file__)
EOF
} >"$OUT/env.log" 2>&1
grep -E "^(torch|device|pandas|numpy) " "$OUT/env.log" | sed 's/^/    /' | tee -a "$SUMMARY"
if [[ $ACC == gpu ]] && ! "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
  note "ABORT: torch sees no CUDA device (see env.log)"
  prep_running && kill -- -"$(cat "$PREP.pid")"
  exit 1
fi

scale() { # the command line for one size, in SCALE
  SCALE=("$PY" benchmarks/scale.py --sizes "$1" --stages fit contributions --accelerator "$ACC"
    --workdir "$WORK")
}
run_big() { # 7. after waiting for the preparation until $1
  wait_prep "$1"
  case $? in
    1) return ;;
    2)
      note "1m: NOT RUN, the $BIG-cell data is still being prepared (pid $(cat "$PREP.pid"))."
      note "NEXT: call the device again AT ONCE with: bash benchmarks/gpu_check.sh 1m"
      PENDING=1
      return
      ;;
  esac
  local -a extra=()
  local need=$((BIG * 24 / 1000000 + 2)) avail
  avail=$(df -BG --output=avail "$WORK" | tail -1 | tr -dc 0-9)
  if [[ -n ${GPU_CHECK_NO_DISK:-} ]] || ((avail < need)); then
    extra=(--no-disk)
    note "1m: contributions not written (${avail} GB free, ${need} GB needed)"
  fi
  scale "$BIG"
  step "scale_$BIG" $((DEADLINE - SECONDS)) "${SCALE[@]}" "${extra[@]}"
}

PENDING=0
# 4. Exactness on the GPU: the test must run, not skip. With GPU_CHECK_EXACTNESS_BG=1 it runs
# beside step 5 (whose first minutes are the CPU-bound data preparation).
exactness() {
  step exactness 150 "${FG[@]}" "$PY" -m pytest -q -p no:cacheprovider -rs \
    tests/test_contributions.py -k "gpu or cuda"
  if [[ $ACC == gpu ]] && grep -q "SKIPPED" "$OUT/exactness.log"; then
    note "exactness: FAILED, the GPU test was skipped"
  fi
}
EXACT_PID=
if want exactness; then
  if [[ -n ${GPU_CHECK_EXACTNESS_BG:-} ]]; then
    exactness &
    EXACT_PID=$!
  else
    exactness
  fi
fi
# 5. 100k: its own data preparation (about half of the step), fit, all contributions.
if want 100k; then
  scale "$SMALL"
  step "scale_$SMALL" 270 "${FG[@]}" "${SCALE[@]}"
fi
# 5b. Profile of the default fit and a kNN-vs-time curve on the same prepared set.
if want profile; then
  read -ra CONFIGS <<<"${GPU_CHECK_CONFIGS:-}"
  step gpu_profile 300 "${FG[@]}" "$PY" benchmarks/gpu_profile.py --n "$SMALL" --workdir "$WORK" \
    --accelerator "$ACC" --budget "${GPU_CHECK_CURVE_S:-200}" --out "$OUT/gpu_profile.jsonl" \
    ${CONFIGS[@]:+--configs "${CONFIGS[@]}"}
fi
# 7 before 6 if the 1M data is ready already.
if want 1m && want local && prep_done; then
  run_big "$SECONDS"
  BIG_DONE=1
fi
# 6. Local structure: GPU-sized encoder variants on synthetic_20k.
if want local; then
  fg=("${FG[@]}")
  [[ ${BIG_DONE:-} ]] && fg=()
  step local_structure 240 "${fg[@]}" "$PY" benchmarks/local_structure.py --accelerator "$ACC" \
    "${LS_ARGS[@]}" --baselines --out "$OUT/local_structure.jsonl"
fi
want 1m && [[ -z ${BIG_DONE:-} ]] && run_big $((DEADLINE - RESERVE_BIG))

# Targets: the fit's seconds against docs/performance.md's GPU targets.
for target in $TARGETS; do
  n=${target%%:*} limit=${target##*:}
  [[ -f $OUT/scale_$n.log ]] || continue
  fit=$(grep -h '^{' "$OUT/scale_$n.log" | grep '"stage": "fit"' | grep -o '"time_s": [0-9.]*' |
    tail -1 | cut -d' ' -f2)
  [[ -n $fit ]] || continue
  awk -v f="$fit" -v l="$limit" 'BEGIN { exit !(f <= l) }' && v=PASS || v=MISS
  note "target: $n-cell fit ${fit}s against ${limit}s: $v"
done
[[ -n $EXACT_PID ]] && wait "$EXACT_PID"
note "done in $((SECONDS - START))s; logs in $OUT"
((PENDING)) && note "NEXT: bash benchmarks/gpu_check.sh 1m (the preparation keeps running)"
exit 0
