#!/usr/bin/env bash
# `samn track --resume` on DEVICE: blackswan tracked whole, and again stopped by SIGTERM after
# 10 frames and resumed; one line says whether the two runs' files are the same (on a CPU
# they are, bit for bit: tests/test_track_resume.py; this checks a GPU's).
#
#   tools/resume_check.sh DAVIS WORK [DEVICE]      (DEVICE: cuda by default)
set -uo pipefail
DAVIS=${1:?DAVIS root}
WORK=${2:?scratch folder}
DEVICE=${3:-cuda}
[[ $DAVIS = /* ]] || DAVIS=$PWD/$DAVIS  # given from where it was called, not the repository
[[ $WORK = /* ]] || WORK=$PWD/$WORK     # (removed and made again below)
cd "$(dirname "$0")/.."
rm -rf "$WORK" && mkdir -p "$WORK"
box=$(head -n 1 "$DAVIS/boxes/blackswan.txt")
command=(python3 -m samn_tracker.cli track "$DAVIS/JPEGImages/480p/blackswan" --box "$box"
         --device "$DEVICE" --no-progress)
"${command[@]}" --out "$WORK/whole" >>"$WORK/log.txt" 2>&1 ||
    { echo "the whole run failed: $(tail -n 1 "$WORK/log.txt")"; exit 1; }
"${command[@]}" --out "$WORK/cut" >>"$WORK/log.txt" 2>&1 &
pid=$!  # python's own: SIGTERM must reach it, not a subshell
until [[ $(ls "$WORK/cut.partial/masks" 2>/dev/null | wc -l) -ge 10 ]] || ! kill -0 $pid 2>/dev/null; do
    sleep 0.2
done
kill -TERM $pid 2>/dev/null
wait $pid
stopped=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["frames"])' "$WORK/cut.partial/run.json")
"${command[@]}" --out "$WORK/cut" --resume >>"$WORK/log.txt" 2>&1 ||
    { echo "the resume failed: $(tail -n 1 "$WORK/log.txt")"; exit 1; }
differ=$(for item in boxes.txt polygons.txt confidence.txt masks; do
    diff -rq "$WORK/whole/$item" "$WORK/cut/$item" >/dev/null || printf '%s ' "$item"
done)
echo "stopped after $stopped frames, resumed on $DEVICE: ${differ:+DIFFERENT: }${differ:-the same files as the run never stopped}"
