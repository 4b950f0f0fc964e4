#!/usr/bin/env bash
# Proves ablate's CUDA path on this machine's GPU(s) in one go: within 8 minutes on one GPU.
#
#   bash bench/gpu_proof.sh [--only STEP,STEP,...]     (works in the repository root, wherever called from)
#
# Steps, in this order, each timed and under its own time limit; a failing step does not stop the others:
#   env         make install (plus a CUDA build of torch where the venv's torch has none); GPU, driver, CUDA, torch
#   smoke       ablate run studies/smoke.yaml: both trials FINISHED on cuda:N, tags ablate.devices and
#               ablate.gpu, system/gpu_* metrics in MLflow
#   fractional  4 one-iteration bf16 trials with gpus_per_trial 0.25 through Ray, training on one GPU at once
#   latency     bench/latency.py on the GPU: SegFormer B0, B2 and the two ResNet-18 models, fp32 and bf16
#   throughput  bench/gpu_throughput.py --iters 60 --warmup 20: images/s through ablate run vs a bare Runner,
#               B0 and B2, fp32 and bf16, MFU (targets: ablate/bare >= 0.98, bf16 >= 1.5x fp32)
#   ladder      ablate run studies/trick_ladder.yaml --profile demo, then ablate report
#   ddp         a gpus_per_trial: 2 DDP trial on nccl with SyncBN (skipped with fewer than 2 GPUs)
# As soon as a step ends, its result (status, seconds, key numbers, problems and, unless it passed, the
# end of its log) is written to bench/results/gpu_proof.json and to the "GPU proof" section of
# bench/RESULTS.md (bench/gpu_proof.py). The whole run keeps to a time budget: a step gets what its
# own limit and the budget leave, and one that no longer fits is recorded as "not run" (run it again
# with --only; the other steps' results are kept). The env step always runs.
#
# Exit codes: 0 every step passed (or was skipped: ddp on one GPU); 1 a step failed, timed out or did
# not run; 2 bad usage; 3 no CUDA here (nvidia-smi missing or listing no GPU, or the venv's CUDA torch
# seeing none): one line on stderr, nothing installed, run or written (nothing was proven, so not 0).
#
# Environment:
#   ABLATE_GPU_PROOF_VENV=DIR       virtualenv to use and `make install` into (default .venv); one that
#                                   already holds a CUDA torch keeps it
#   ABLATE_GPU_PROOF_CUDA=cu128     PyTorch wheel index for the CUDA torch when one is needed (cu126, cu130, ...)
#   ABLATE_GPU_PROOF_BUDGET_S=465   time budget of the whole run, seconds
#   ABLATE_GPU_PROOF_WORK=DIR       scratch: MLflow stores, work dirs, logs/<step>.log (default: a new temp dir)
#   ABLATE_GPU_PROOF_RESULTS=FILE   the JSON written (default bench/results/gpu_proof.json)
#   ABLATE_GPU_PROOF_MD=FILE        the Markdown file whose section is written (default bench/RESULTS.md)
#   ABLATE_GPU_PROOF_DRY_RUN=1      plumbing check on any machine: no GPU check, no install, every step's
#                                   command replaced by an instant stand-in, JSON and Markdown in the work dir
#                                   unless moved; ABLATE_GPU_PROOF_DRY_FAIL / ABLATE_GPU_PROOF_DRY_HANG=STEP,...
#                                   make stand-ins fail or outlast their limit
#   PIP_DEFAULT_TIMEOUT (15 s here), PIP_RETRIES (2 here): without network pip gives up quickly and the
#   env step says so. Offline, give pip a wheelhouse: PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR.

# shellcheck disable=SC2317  # the step_* functions run indirectly, through `bash -c step_NAME`
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STEPS=(env smoke fractional latency throughput ladder ddp)
declare -A LIMIT=([env]=300 [smoke]=150 [fractional]=120 [latency]=90 [throughput]=240 [ladder]=240 [ddp]=180)
RESERVE_S=15   # kept back for recording the last step
MIN_STEP_S=40  # a step with less time than this left is not started

usage_error() {
  echo "gpu_proof: $1 (steps: ${STEPS[*]})" >&2
  exit 2
}

ONLY=""
while (($#)); do
  case $1 in
    --only)
      (($# >= 2)) || usage_error "--only needs a comma-separated list of steps"
      ONLY=$2
      shift 2
      ;;
    --only=*)
      ONLY=${1#--only=}
      shift
      ;;
    -h | --help)
      awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *) usage_error "unknown option $1" ;;
  esac
done
if [[ -n $ONLY ]]; then
  IFS=, read -r -a wanted <<<"$ONLY"
  for name in "${wanted[@]}"; do
    [[ " ${STEPS[*]} " == *" $name "* ]] || usage_error "--only: unknown step '$name'"
  done
  [[ ,$ONLY, == *,env,* ]] || ONLY=env,$ONLY
fi
BUDGET=${ABLATE_GPU_PROOF_BUDGET_S:-465}
[[ $BUDGET =~ ^[0-9]+$ ]] || usage_error "ABLATE_GPU_PROOF_BUDGET_S must be whole seconds, not '$BUDGET'"

dry() { [[ ${ABLATE_GPU_PROOF_DRY_RUN:-0} != 0 ]]; }
VENV=${ABLATE_GPU_PROOF_VENV:-.venv}
PY=$VENV/bin/python
ABLATE=$VENV/bin/ablate

# -- no CUDA here: one line, nothing written ---------------------------------------------------------
no_cuda() {
  echo "gpu_proof: no CUDA here ($1): nothing installed, run or written" >&2
  exit 3
}
if ! dry; then
  command -v nvidia-smi >/dev/null 2>&1 || no_cuda "nvidia-smi not found"
  listed=$(nvidia-smi -L 2>/dev/null) || listed=""
  [[ $listed == *"GPU "* ]] || no_cuda "nvidia-smi lists no GPU"
  if [[ -x $PY ]]; then  # a CPU build is replaced by the env step; a CUDA build that sees no GPU is final
    seen=$("$PY" -c 'import torch
print("yes" if not torch.version.cuda or torch.cuda.is_available()
      else f"torch {torch.__version__}, built for CUDA {torch.version.cuda}, sees no GPU")' 2>/dev/null) || seen=yes
    [[ $seen == yes ]] || no_cuda "$seen"
  fi
fi

# -- the run's settings ------------------------------------------------------------------------------
START=$(date +%s)
WORK=${ABLATE_GPU_PROOF_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/ablate-gpu-proof.XXXXXX")}
mkdir -p "$WORK/logs"
WORK=$(cd "$WORK" && pwd)
if dry; then
  export ABLATE_GPU_PROOF_RESULTS=${ABLATE_GPU_PROOF_RESULTS:-$WORK/gpu_proof.json}
  export ABLATE_GPU_PROOF_MD=${ABLATE_GPU_PROOF_MD:-$WORK/RESULTS.md}
  for name in "${STEPS[@]}"; do LIMIT[$name]=5; done
  LIMIT[env]=120  # its stand-in still probes torch
  MIN_STEP_S=1
fi
# The benchmarks' environment (bench/_common.py): no telemetry, synchronous MLflow writes, never the
# user's own store or Ray cluster; pip that gives up soon without network.
export RAY_USAGE_STATS_ENABLED=0 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 MLFLOW_ENABLE_ASYNC_LOGGING=false \
  MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true PYTHONWARNINGS=ignore PYTHONUNBUFFERED=1
unset MLFLOW_TRACKING_URI RAY_ADDRESS
export ABLATE_CACHE_DIR=$WORK/cache
export PIP_DEFAULT_TIMEOUT=${PIP_DEFAULT_TIMEOUT:-15} PIP_RETRIES=${PIP_RETRIES:-2} PIP_DISABLE_PIP_VERSION_CHECK=1
CUDA_TAG=${ABLATE_GPU_PROOF_CUDA:-cu128}
TORCH_VERSION=$(sed -n 's/^TORCH *?= *torch==//p' Makefile)
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
export VENV PY ABLATE WORK CUDA_TAG TORCH_VERSION

# bench/gpu_proof.py runs under the venv's Python once there is one (its checks read MLflow), else python3.
helper_python() {
  if [[ -x $PY ]] && "$PY" -c '' 2>/dev/null; then echo "$PY"; else echo python3; fi
}
helper() { "$(helper_python)" bench/gpu_proof.py "$@"; }

# -- the steps: each runs in its own `bash -euo pipefail`, in the repository root ----------------------
has_cuda_torch() { "$PY" -c 'import sys, torch; sys.exit(0 if torch.version.cuda else 1)' 2>/dev/null; }

step_env() {
  local keep=()
  if [[ -x $PY ]] && has_cuda_torch; then
    keep=(TORCH=torch)  # the CUDA torch this venv holds stays
  fi
  if ! command -v make >/dev/null; then
    echo "make not found: the project installs through make install"
    return 1
  fi
  make install VENV="$VENV" "${keep[@]}"
  if ! has_cuda_torch; then
    echo "the venv's torch has no CUDA: installing torch==$TORCH_VERSION+$CUDA_TAG from the PyTorch index"
    "$PY" -m pip install "torch==$TORCH_VERSION+$CUDA_TAG" --index-url "https://download.pytorch.org/whl/$CUDA_TAG"
  fi
  "$PY" bench/gpu_proof.py probe --out "$WORK/env/probe.json"
}

# `ablate run --json` of a study into the step's folder (its own MLflow store and work dirs).
run_study() {
  local step=$1 study=$2
  shift 2
  "$ABLATE" run "$study" --tracking-uri "sqlite:///$WORK/$step/mlruns.db" --runs-dir "$WORK/$step/runs" --json \
    "$@" >"$WORK/$step/run.json"
}

step_smoke() { run_study smoke studies/smoke.yaml; }

step_fractional() {
  "$PY" bench/gpu_proof.py study fractional --data "$WORK/tiny" --out "$WORK/fractional/study.yaml"
  run_study fractional "$WORK/fractional/study.yaml" --dispatcher ray
}

step_latency() {
  ABLATE_BENCH_RESULTS=$WORK/latency/results "$PY" bench/latency.py --max-s 3 \
    --models "SegFormer B0,SegFormer B2,DeepLabV3+ & ResNet18,PSPNet & ResNet18"
}

step_throughput() {
  ABLATE_BENCH_RESULTS=$WORK/throughput/results "$PY" bench/gpu_throughput.py --iters 60 --warmup 20 \
    --keep "$WORK/throughput/scratch"
}

step_ladder() {
  local rc=0
  run_study ladder studies/trick_ladder.yaml --profile demo || rc=$?
  "$ABLATE" report studies/trick_ladder.yaml --profile demo --tracking-uri "sqlite:///$WORK/ladder/mlruns.db" \
    --out "$WORK/ladder/report"
  return "$rc"
}

step_ddp() {
  "$PY" bench/gpu_proof.py study ddp --data "$WORK/tiny" --out "$WORK/ddp/study.yaml"
  run_study ddp "$WORK/ddp/study.yaml" --dispatcher ray
}
export -f has_cuda_torch run_study step_env step_smoke step_fractional step_latency step_throughput step_ladder step_ddp

run_step() {
  local name=$1 left limit rc=0 t0 t1 log=$WORK/logs/$1.log
  left=$((START + BUDGET - $(date +%s) - RESERVE_S))
  if ((left < MIN_STEP_S)); then
    helper record "$name" --status "not run" --reason "time budget spent (${left} s usable of ${BUDGET} s)" || true
    return 0
  fi
  limit=${LIMIT[$name]}
  ((limit <= left)) || limit=$left
  mkdir -p "$WORK/$name"
  echo "== $name (limit ${limit} s, log $log)"
  t0=$(date +%s.%N)
  if dry; then
    timeout -k 5 "$limit" "$(helper_python)" bench/gpu_proof.py dry "$name" --work "$WORK/$name" >"$log" 2>&1 || rc=$?
  else
    timeout -k 10 "$limit" bash -euo pipefail -c "step_$name" >"$log" 2>&1 || rc=$?
  fi
  t1=$(date +%s.%N)
  helper record "$name" --rc "$rc" --started "$t0" --ended "$t1" --log "$log" --work "$WORK/$name" ||
    echo "gpu_proof: the $name step could not be recorded" >&2
}

selected() { [[ -z $ONLY || ,$ONLY, == *,$1,* ]]; }

# -- the run -----------------------------------------------------------------------------------------
dry_flag=()
if dry; then dry_flag=(--dry-run); fi
helper start --budget "$BUDGET" --work "$WORK" --only "$ONLY" "${dry_flag[@]}" \
  --command "bash bench/gpu_proof.sh${ONLY:+ --only $ONLY}"
run_step env
usable=no
if dry || [[ $(helper get cuda_ok) == yes ]]; then usable=yes; fi
gpus=$(helper get gpu_count) || gpus=0
for name in "${STEPS[@]:1}"; do
  selected "$name" || continue
  if [[ $usable != yes ]]; then
    helper record "$name" --status "not run" --reason "the env step gave no torch that uses the GPU" || true
  elif [[ $name == ddp ]] && ((gpus < 2)); then
    helper record ddp --status skipped --reason "needs 2 GPUs; this machine has $gpus" || true
  else
    run_step "$name"
  fi
done
rc=0
helper render || rc=$?
verdict="every step passed or was skipped"
((rc == 0)) || verdict="some steps failed or did not run"
echo "gpu_proof: $verdict (exit $rc); results: ${ABLATE_GPU_PROOF_RESULTS:-bench/results/gpu_proof.json}," \
  "${ABLATE_GPU_PROOF_MD:-bench/RESULTS.md}; logs: $WORK/logs"
exit "$rc"
