#!/bin/sh
# Generate the references one configuration at a time (the order used; see README.md), committing each.
# Usage (from the repository root): COMMIT=1 nice -n 15 sh tests/scalesim_reference/run_queue.sh
# (cheap configurations first: ResNet-18 on 12 x 14 takes SCALE-Sim tens of minutes)
set -u
PY=${SCALESIM_PYTHON:-/work/scalesim-venv/bin/python}
for job in "mobilenet_v2 array32_ws" "resnet18 array32_os" "resnet18 tpu_os" "resnet18 tpu_ws" \
           "resnet18 tpu_is" "bandwidth array32_ws" "bandwidth array32_os" "mobilenet_v2 array32_os" \
           "mobilenet_v2 tpu_os" "mobilenet_v2 tpu_ws" "resnet18 eyeriss_ws" "resnet18 array32_ws" \
           "mobilenet_v2 eyeriss_ws" "mobilenet_v2 eyeriss_os" "resnet18 array32_is" "resnet18 eyeriss_os"; do
  set -- $job
  if [ "$1" = bandwidth ]; then  # SCALE-Sim's bandwidth-limited mode on a few layers (not an oracle)
    out=tests/scalesim_reference/references/bandwidth__$2__bw4.csv
    [ -f "$out" ] || $PY tests/scalesim_reference/bandwidth_check.py "$2" 4 2>&1 | tail -1 | tee -a tests/scalesim_reference/references/wall_times.txt
    if [ -n "${COMMIT:-}" ] && [ -f "$out" ]; then
      git add "$out" && git commit -q -m "SCALE-Sim 3.0.0 bandwidth-limited run: $2 at 4 bytes/cycle" -- "$out"
    fi
    continue
  fi
  out=tests/scalesim_reference/references/$1__$2.csv
  [ -f "$out" ] && continue
  $PY tests/scalesim_reference/generate.py "$1" "$2" 2>&1 | tail -1 | tee -a tests/scalesim_reference/references/wall_times.txt
  if [ -n "${COMMIT:-}" ] && [ -f "$out" ]; then
    for i in 1 2 3 4 5; do
      git add "$out" tests/scalesim_reference/references/wall_times.txt && \
        git commit -q -m "SCALE-Sim 3.0.0 reference: $1 on $2" -- "$out" tests/scalesim_reference/references/wall_times.txt && break
      sleep 5
    done
  fi
done
