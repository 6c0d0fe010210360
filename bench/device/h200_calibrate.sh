#!/usr/bin/env bash
# The one prepared device run of the live calibration (issue 12): on a lent H200, measure the
# chip (matmul and copy ceilings, then timed training steps of the plan `calibrate --plan` prints)
# within a hard wall-clock budget, fit every step-time model and write the calibrated hardware
# file. Everything lands in $OUT as it is produced, so a run cut short still returns what it made.
#
#   here:    bash bench/device/prepare.sh            (builds .whl/)
#   device:  run(command="bash bench/device/h200_calibrate.sh", carry=[".whl"], timeout_s=480)
#   rehearse on this CPU: OUT=/tmp/rehearsal HW=cpu BUDGET=40 bash bench/device/h200_calibrate.sh
#
# Device time (15 min a session, the machine's start included): one shot. BUDGET=300 s of
# calibration plus the install, JAX's start and the fit is about 5.5 min; timeout_s=480 stops an
# overrun. A failure in the first minute (install, import) leaves time for one rerun; a later one
# does not. Smaller budgets measure too few steps: at 240 s the plan has 6 fit steps (the split
# model, 5 coefficients, needs 7), at 180 s 4.
set -uo pipefail
OUT=${OUT:-/tmp/timescale-device-out}
HW=${HW:-h200_sxm}
BUDGET=${BUDGET:-300}
mkdir -p "$OUT"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log"; }

log "install the carried wheels"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/timescale-site .whl/*.whl \
    2>&1 | tee -a "$OUT/run.log" || { log "install failed"; exit 1; }
export PYTHONPATH=/tmp/timescale-site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if command -v nvidia-smi >/dev/null; then
    nvidia-smi >"$OUT/device.txt" 2>&1
    # Lessons (../shared/reference/accelerator-lessons.md): level 1 keeps GEMMs at full speed
    # (773 of ~790 TFLOP/s) and compiles faster; never 0 (GEMMs 75x slower). The run records it.
    export XLA_FLAGS="--xla_gpu_autotune_level=1 ${XLA_FLAGS:-}"
fi
timescale() { python3 -c 'import sys; from timescale_frontier.cli import main; sys.argv[0] = "timescale"; main()' "$@"; }
python3 -c 'import jax, timescale_frontier; print("jax", jax.__version__, jax.devices(), timescale_frontier.__file__)' \
    2>&1 | tee -a "$OUT/run.log"

log "plan ($HW, budget $BUDGET s)"
timescale calibrate -H "$HW" --plan --time-budget-s "$BUDGET" | tee "$OUT/plan.txt"
log "calibrate"
timescale calibrate -H "$HW" --time-budget-s "$BUDGET" --measurements "$OUT/steps.jsonl" --out "$OUT/$HW.toml" \
    2>&1 | tee "$OUT/calibrate.log"
status=${PIPESTATUS[0]}
log "calibrate exit $status"
if [ -f "$OUT/$HW.toml" ]; then
    log "held-out steps against the new file"
    timescale validate -H "$OUT/$HW.toml" --measurements "$OUT/steps.jsonl" --split validation 2>&1 | tee "$OUT/validate.txt"
fi
log "done"
exit "$status"
