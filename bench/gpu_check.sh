#!/usr/bin/env bash
# Every GPU check of kd-lens, in one run that fits one device session (under 8 minutes):
#   1. model FLOP utilisation of a BERT-base-sized config at sequence length 128, bf16 + SDPA,
#      bare forward, under torch.compile, and through Teacher.predict_logits (bench/teacher_throughput.py)
#   2. the demo teacher's fine-tuning time on the GPU (bench/teacher_finetune.py)
#   3. bf16 autocast logits against float32 on that fine-tuned teacher (bench/bf16_check.py)
#
#   bash bench/gpu_check.sh --prepare   # on the CPU machine first: packs .cache/gpu_check (encoder, corpus)
#   bash bench/gpu_check.sh             # on the GPU machine, carrying .cache/gpu_check
#   bash bench/gpu_check.sh --dry-run   # on the CPU: the same steps on tiny sizes, to check the script
#
# Results go to $OUT when it is set, else runs/gpu_check: summary.txt (one line a step, with its
# exit status and seconds), a log and a JSON file per step (7 files). Each step has its own timeout.
set -u
cd "$(dirname "$0")/.."
MODE=gpu
case "${1:-}" in
  --prepare) MODE=prepare ;;
  --dry-run) MODE=dry ;;
  "") ;;
  *) echo "usage: bash bench/gpu_check.sh [--prepare | --dry-run]" >&2; exit 2 ;;
esac
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ] && [ "$MODE" != gpu ]; then PY=.venv/bin/python
else PY=python3; fi
PACK=.cache/gpu_check

if [ "$MODE" = prepare ]; then
  exec "$PY" bench/gpu_prepare.py --out "$PACK"
fi

RESULTS=${OUT:-runs/gpu_check}
mkdir -p "$RESULTS"
SUMMARY=$RESULTS/summary.txt
: > "$SUMMARY"
export PYTHONUNBUFFERED=1
if [ "$MODE" = gpu ]; then
  [ -d "$PACK/encoder" ] || { echo "$PACK is missing: run 'bash bench/gpu_check.sh --prepare' here and carry $PACK" | tee -a "$SUMMARY"; exit 2; }
  export PYTHONPATH="$PWD/$PACK/site${PYTHONPATH:+:$PYTHONPATH}"
  ENCODER=$PACK/encoder
  DEVICE=cuda
  MFU_ARGS="--batch 512 --steps 30 --compile --label-texts 32768"
  FIT_ARGS=""
  CHECK_ARGS="--texts 2000"
  LIMITS=(150 210 60)
else
  ENCODER=embedded-minilm
  DEVICE=cpu
  MFU_ARGS="--tiny --peak-tflops 1"
  FIT_ARGS="--max-steps 2 --eval-every 2 --dev-texts 16 --threads 1"
  CHECK_ARGS="--texts 16"
  LIMITS=(120 180 120)
fi
TEACHER_DIR=$(mktemp -d)/teacher

step() {  # step NAME LIMIT_SECONDS COMMAND...
  local name=$1 limit=$2 started rc
  shift 2
  started=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$RESULTS/$name.log" 2>&1
  rc=$?
  [ $rc = 124 ] && echo "timed out after $limit s" >> "$RESULTS/$name.log"
  echo "$name: exit $rc, $(( $(date +%s) - started )) s (limit $limit s)" | tee -a "$SUMMARY"
  grep -v -i "warn" "$RESULTS/$name.log" | tail -n 8
}

{
  echo "mode: $MODE  date: $(date -u +%FT%TZ)  python: $("$PY" -c 'import sys, torch, transformers; print(sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())' 2>&1)"
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
} | tee -a "$SUMMARY"

step mfu "${LIMITS[0]}" "$PY" bench/teacher_throughput.py --gpu-only --device "$DEVICE" --tokenizer "$ENCODER" \
  --json "$RESULTS/mfu.json" $MFU_ARGS
step finetune "${LIMITS[1]}" "$PY" bench/teacher_finetune.py --device "$DEVICE" --encoder "$ENCODER" \
  --save "$TEACHER_DIR" --json "$RESULTS/finetune.json" $FIT_ARGS
if [ -f "$TEACHER_DIR/config.json" ]; then
  step bf16 "${LIMITS[2]}" "$PY" bench/bf16_check.py --teacher "$TEACHER_DIR" --device "$DEVICE" \
    --json "$RESULTS/bf16.json" $CHECK_ARGS
else
  echo "bf16: skipped (the fine-tuning step saved no teacher)" | tee -a "$SUMMARY"
fi
rm -rf "$(dirname "$TEACHER_DIR")"
echo "results in $RESULTS"
