"""Three measurements behind the service's settings, each in a fresh process:

    python -m bench.micro

- a full garbage collection once TensorFlow and the model are loaded, before and after
  ``gc.freeze()`` (why the lifespan freezes);
- a batch-1 and a batch-256 model call with 1 TensorFlow thread and with one per core (why
  ``TF_INTRA_OP_THREADS`` defaults to 1);
- with 1 thread, the served model's denoise and score endpoints as two TensorFlow calls per batch
  against the one fused call the service makes: wall and CPU time (why ``app.inference`` fuses).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from app.inference import Model


def _child(threads: int) -> dict[str, float]:
    import gc

    from app.inference import load_model
    from app.settings import DEFAULT_MODEL_DIR

    model = load_model(DEFAULT_MODEL_DIR, intra_op_threads=threads)
    result: dict[str, float] = {"objects": len(gc.get_objects())}
    started = time.perf_counter()
    gc.collect()
    result["full_gc_ms"] = (time.perf_counter() - started) * 1000
    gc.freeze()
    started = time.perf_counter()
    gc.collect()
    result["full_gc_after_freeze_ms"] = (time.perf_counter() - started) * 1000
    for batch_size, repeats in ((1, 500), (256, 40)):
        batch = np.zeros((batch_size, 28, 28, 1), np.float32)
        for _ in range(20):
            model(batch)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            model(batch)
            times.append(time.perf_counter() - started)
        result[f"batch_{batch_size}_ms"] = statistics.median(times) * 1000
    if threads == 1:
        result |= _one_call_or_two(model)
    return result


def _one_call_or_two(model: Model) -> dict[str, float]:
    """Median wall and CPU ms per batch: the endpoints called one after the other, and ``model``."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(model.path))
    if getattr(loaded, "score", None) is None:
        return {}
    spec = tf.TensorSpec([None, 28, 28, 1], tf.float32)
    denoise, score = loaded.serve.get_concrete_function(spec), loaded.score.get_concrete_function(spec)

    def two_calls(batch: np.ndarray) -> None:
        images = tf.constant(batch)
        np.asarray(denoise(images)), np.asarray(score(images))

    ways: dict[str, Callable[[np.ndarray], object]] = {"two_calls": two_calls, "one_call": model}
    result: dict[str, float] = {}
    for batch_size in (1, 8):
        batch = np.zeros((batch_size, 28, 28, 1), np.float32)
        walls: dict[str, list[float]] = {name: [] for name in ways}
        cpus: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(7):  # rounds of 50 calls each way, alternating: the machine's noise hits both
            for name, call in ways.items():
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(50):
                    call(batch)
                walls[name].append((time.perf_counter() - wall) / 50)
                cpus[name].append((time.process_time() - cpu) / 50)
        for name in ways:
            result[f"{name}_{batch_size}_ms"] = statistics.median(walls[name]) * 1000
            result[f"{name}_{batch_size}_cpu_ms"] = statistics.median(cpus[name]) * 1000
    return result


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_child(int(sys.argv[2]))))
        return 0
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    for threads in (1, 0):
        out = subprocess.run(
            [sys.executable, "-m", "bench.micro", "--child", str(threads)],
            capture_output=True, text=True, env=env, check=True,
        ).stdout  # fmt: skip
        r = json.loads(out.strip().splitlines()[-1])
        label = "1 thread" if threads == 1 else f"{os.cpu_count()} threads (one per core)"
        print(
            f"TensorFlow {label}: batch 1 {r['batch_1_ms']:.2f} ms, batch 256 {r['batch_256_ms']:.1f} ms "
            f"({r['batch_256_ms'] / 256:.3f} ms/image); full GC over {r['objects']:,.0f} objects "
            f"{r['full_gc_ms']:.0f} ms, after gc.freeze() {r['full_gc_after_freeze_ms']:.2f} ms"
        )
        for batch_size in (1, 8) if "one_call_1_ms" in r else ():
            print(
                f"  denoise + score at batch {batch_size}, wall / CPU ms: two calls "
                f"{r[f'two_calls_{batch_size}_ms']:.2f} / {r[f'two_calls_{batch_size}_cpu_ms']:.2f}, one call "
                f"{r[f'one_call_{batch_size}_ms']:.2f} / {r[f'one_call_{batch_size}_cpu_ms']:.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
