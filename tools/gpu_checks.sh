#!/usr/bin/env bash
# The GPU measurements that issue #10 asks for, in order of priority, in one run: each
# step writes its result into OUT as soon as it ends, so a run cut short keeps the steps
# it finished. For one CUDA GPU; runs from the source tree (python3 -m samn_tracker.cli), so
# the package need not be installed, only its dependencies.
#
#   tools/gpu_checks.sh DAVIS OUT [SECONDS]
#
# DAVIS: a DAVIS 2016 root with boxes/<seq>.txt and splits.txt (../shared/data/davis16, or
# a copy of its eval sequences); OUT: a folder for the results; SECONDS: a budget (default
# 480): a step that would start after it is skipped and says so in OUT/log.txt.
# SAMN_CHECK_DEVICE: the device of every step (default cuda); SAMN_CHECK_ARGS: options added to
# every bench. A dry run on a CPU: SAMN_CHECK_DEVICE=cpu SAMN_CHECK_ARGS="--max-frames 3".
# OUT receives at most seven files: log.txt, env.txt, four bench JSON files and the CUDA
# tests' log (the resume check's verdict is in log.txt). docs/bench.md says what each step
# measures and what the last figures were.
set -uo pipefail
DAVIS=${1:?DAVIS root}
OUT=${2:?output folder}
BUDGET=${3:-480}
DEVICE=${SAMN_CHECK_DEVICE:-cuda}
[[ $DAVIS = /* ]] || DAVIS=$PWD/$DAVIS  # given from where it was called, not the repository
[[ $OUT = /* ]] || OUT=$PWD/$OUT
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
WORK=$(mktemp -d)
START=$SECONDS
export PYTHONUNBUFFERED=1

log() { echo "[$((SECONDS - START)) s] $*" | tee -a "$OUT/log.txt"; }

# step NAME LIMIT COMMAND...: run COMMAND with at most LIMIT seconds, unless the budget is spent.
step() {
    local name=$1 limit=$2
    shift 2
    if (( SECONDS - START + 20 > BUDGET )); then
        log "$name: skipped, the budget of $BUDGET s is spent"
        return
    fi
    log "$name: start"
    timeout "$limit" "$@" >>"$WORK/$name.log" 2>&1
    log "$name: exit $? ($(tail -n 1 "$WORK/$name.log"))"
}

# bench NAME ARGS...: `samn bench` of SAMN on the eval sequences; its bench.json lands as OUT/NAME.json.
bench() {
    local name=$1
    shift
    step "$name" 180 python3 -m samn_tracker.cli bench --data "$DAVIS" --device "$DEVICE" --no-progress \
        --out "$WORK/$name" "$@" ${SAMN_CHECK_ARGS:-}
    [[ -f $WORK/$name/bench.json ]] && cp "$WORK/$name/bench.json" "$OUT/$name.json"
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
                                    torch.cuda.is_available() and torch.cuda.get_device_name(0))'
    git log -1 --format='code %h %s' 2>/dev/null
    date -u
} >"$OUT/env.txt" 2>&1

# 1. paper at batch 1 (target: 200 fps). No ImageNet download there: a random backbone
#    runs the same network, so the speed is the trained one's.
bench paper_b1 --trackers samn_paper --repeat 3 --set model.pretrained_backbone=False
# 2. lite, 32 videos in lockstep (target: 1000 frames/s), default groups (2 on a GPU).
bench lite_b32 --trackers samn_lite --repeat 3 --batch 32
# 2b. the same with untuned box starts, as every GPU figure before 2026-11-28 was made: the
#     shared decoder's one pass, against the stacked pass of the targets' own decoders.
bench lite_b32_untuned --trackers samn_lite --repeat 3 --batch 32 --set tuning.from_box=false
# 2c. the same without snapping the masks to the frames' edges (host work, since 2026-11-28).
bench lite_b32_unsnapped --trackers samn_lite --repeat 3 --batch 32 --set edges.radius=0
# 3. the same with the connected components on the device (default: host).
bench lite_b32_device_components --trackers samn_lite --repeat 3 --batch 32 --set mask_components=device
# 4. paper at batch 1 with the components on the device.
bench paper_b1_device_components --trackers samn_paper --repeat 3 \
    --set model.pretrained_backbone=False mask_components=device
# 5. the tests that run only on CUDA (the rest skip without ../shared/data).
step cuda_tests 240 python3 -m pytest -q -x -p no:cacheprovider tests/test_graphs.py \
    tests/test_spatial_memory.py tests/test_model.py tests/test_frame_ops.py tests/test_speed.py \
    tests/test_device_components.py tests/test_lockstep.py tests/test_decoder_tuning.py
cp "$WORK/cuda_tests.log" "$OUT/cuda_tests.log" 2>/dev/null

# 6. `samn track --resume` on the device, against a run never stopped (tools/resume_check.sh).
step resume 150 tools/resume_check.sh "$DAVIS" "$WORK/resume" "$DEVICE"
log "done"
