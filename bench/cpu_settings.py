"""Speed on this CPU (issue 13, item 5): VGG19's forward+backward pass under TensorFlow's documented CPU settings,
against PyTorch's pass of the same network, side by side in one run.

    python bench/cpu_settings.py --size 384 --passes 5 --torch-python /tmp/pastiche-venv/bin/python \
        --json-out bench/results/cpu_settings.json

Each variant runs in its own fresh process, since TensorFlow reads these settings once, at start-up:

- ``default``: what the engine runs (oneDNN on, TensorFlow's own thread pools);
- ``onednn_off``: ``TF_ENABLE_ONEDNN_OPTS=0`` (Eigen's kernels instead of oneDNN's);
- ``inter_op_1``: ``tf.config.threading.set_inter_op_parallelism_threads(1)`` (one op at a time, each op on every
  core: on 2 cores the backward pass's independent ops otherwise split the cores between them);
- ``intra_op_1``: one thread inside each op (the opposite split, for completeness);
- ``xla``: the pass traced with ``tf.function(jit_compile=True)`` (XLA on CPU);
- ``bfloat16``: the backbone in bfloat16 (``precision=bfloat16``; this CPU has AVX512_BF16, which oneDNN uses);
- ``mmap_threshold_1mib``: glibc's ``MALLOC_MMAP_THRESHOLD_=1048576`` (every block over 1 MiB mmapped and given back
  when freed: 263 MiB less peak memory at 512 px, docs/engine.md "Memory"), to price it in time;
- ``torch`` / ``torch_channels_last``: PyTorch's pass in the given interpreter (pastiche's throwaway venv), random
  weights of the same shapes (a pass costs the same whatever the weights), NCHW and channels-last.

The pass is the engine's floor (``backend_tf.floor_fn``): the image through VGG19 to ``block5_conv1`` (the deepest
default layer), the sum of the outputs as the loss, its gradient with respect to the image. Every variant times
``--passes`` passes after two untimed ones (tracing, oneDNN's primitive cache); the figure is the median, and
``ratio_to_torch`` each variant's median over the faster PyTorch layout's. ``--rounds N`` runs the whole sequence N
times (interleaved, so a change of load hits every variant) and reports the median over rounds, with every round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TF_VARIANTS = {
    "default": {},
    "onednn_off": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "inter_op_1": {"ATELIER_BENCH_INTER_OP": "1"},
    "intra_op_1": {"ATELIER_BENCH_INTRA_OP": "1"},
    "xla": {"ATELIER_BENCH_XLA": "1"},
    "bfloat16": {"ATELIER_BENCH_PRECISION": "bfloat16"},
    "mmap_threshold_1mib": {"MALLOC_MMAP_THRESHOLD_": "1048576"},
}
TORCH_PASS = r"""
import statistics, sys, time, torch
size, passes, channels_last = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
layers, c = [], 3
for block, convs in enumerate((2, 2, 4, 4, 1), start=1):  # VGG19 up to block5_conv1
    width = min(64 * 2 ** (block - 1), 512)
    for _ in range(convs):
        layers += [torch.nn.Conv2d(c, width, 3, padding=1), torch.nn.ReLU()]
        c = width
    if block < 5:
        layers.append(torch.nn.MaxPool2d(2, 2))
net = torch.nn.Sequential(*layers).eval()
for p in net.parameters():
    p.requires_grad_(False)
image = torch.rand(1, 3, size, size) * 255
if channels_last:
    net, image = net.to(memory_format=torch.channels_last), image.contiguous(memory_format=torch.channels_last)
times = []
for i in range(passes + 2):
    x = image.clone().requires_grad_(True)
    started = time.perf_counter()
    net(x).sum().backward()
    if i >= 2:
        times.append(time.perf_counter() - started)
print(statistics.median(times), torch.get_num_threads())
"""


def tf_pass(size_px: int, passes: int) -> float:
    """In this process (a fresh one per variant): the floor pass's median seconds under the env's settings."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    if os.environ.get("ATELIER_BENCH_INTER_OP"):
        tf.config.threading.set_inter_op_parallelism_threads(int(os.environ["ATELIER_BENCH_INTER_OP"]))
    if os.environ.get("ATELIER_BENCH_INTRA_OP"):
        tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["ATELIER_BENCH_INTRA_OP"]))
    sys.path.insert(0, str(ROOT))
    from shared.params import StyleParams
    from worker.engine import engine

    precision = os.environ.get("ATELIER_BENCH_PRECISION", "float32")
    params = StyleParams(precision=precision)
    backbone, _cached, _c, _s, _order, extractor = engine._network(params, precision)

    @tf.function(jit_compile=bool(os.environ.get("ATELIER_BENCH_XLA")))
    def floor(image):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(image)
            outputs = extractor(backbone.preprocess(image[None]), training=False)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            loss = tf.add_n([tf.reduce_sum(tf.cast(out, tf.float32)) for out in outputs])
        return tape.gradient(loss, image)

    image = tf.constant(np.random.default_rng(0).uniform(0, 255, (size_px, size_px, 3)).astype(np.float32))
    times = []
    for i in range(passes + 2):
        started = time.perf_counter()
        floor(image).numpy()
        if i >= 2:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def one_round(args: argparse.Namespace) -> dict[str, float]:
    """Every variant once, each in a fresh process: median seconds of its passes."""
    rows = {}
    for name in args.variants.split(","):
        env = {**os.environ, **TF_VARIANTS[name], "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run([sys.executable, __file__, "--one", name, "--size", str(args.size), "--passes",
                               str(args.passes)], env=env, capture_output=True, text=True, check=True)
        rows[name] = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
        print(f"{name:<22} {rows[name]:.3f} s", flush=True)
    if args.torch_python:
        for name, flag in (("torch", "0"), ("torch_channels_last", "1")):
            done = subprocess.run([args.torch_python, "-c", TORCH_PASS, str(args.size), str(args.passes), flag],
                                  capture_output=True, text=True, check=True)
            seconds, _threads = done.stdout.split()
            rows[name] = float(seconds)
            print(f"{name:<22} {rows[name]:.3f} s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--torch-python", help="a Python with torch (pastiche's throwaway venv)")
    parser.add_argument("--variants", default=",".join(TF_VARIANTS))
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one TF variant in this process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps({"seconds": tf_pass(args.size, args.passes)}))
        return 0
    rounds: dict[str, list[float]] = {}
    for _round in range(args.rounds):
        for name, seconds in one_round(args).items():
            rounds.setdefault(name, []).append(seconds)
    rows = {name: statistics.median(values) for name, values in rounds.items()}
    torch_best = min((rows[k] for k in ("torch", "torch_channels_last") if k in rows), default=None)
    report = {"size_px": args.size, "passes": args.passes, "seconds": rows, "rounds": rounds,
              "load_average": os.getloadavg(),
              "ratio_to_torch": {k: v / torch_best for k, v in rows.items()} if torch_best else None}
    print(json.dumps(report, indent=2))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
