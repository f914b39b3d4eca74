"""Benchmark: the memory a network trial's process needs before any of the corpus, per model.

    python benchmarks/bench_trial_floor.py [--models CNN,att-Res,att-Res+] [--batch-size 32]
        [--image-size 128] [--steps 3]

Each model runs in a fresh process that imports what a Tune trial's process imports (torch,
Ray Tune, the grid's trial and fit modules), then builds the model with Adam and takes
``--steps`` training steps on random (batch, 1, size, size) inputs on one CPU thread.
Reports the process's anonymous (heap) and resident memory after the imports, the heap after
the steps, and the peak resident memory (``ru_maxrss``). The data path adds to this only the
rows of a batch and the trial's share of the object store's copy (docs/performance.md), so
these figures are the part of the node-memory target's "k x 1 GiB" that the model and the
libraries take.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

ONE_MODEL = """
import json, resource, sys
import torch
from ray import tune  # noqa: F401  what a Tune trial's process has loaded
import workflows.grid.fit, workflows.grid.trial  # noqa: F401
from attres.models import create_model

def gib(key):
    with open("/proc/self/status") as status:
        return sum(int(line.split()[1]) for line in status if line.startswith(key)) / 2**20

name, batch, size, steps = sys.argv[1], *map(int, sys.argv[2:5])
torch.set_num_threads(1)
imports = {"heap_imports": gib("RssAnon"), "rss_imports": gib("VmRSS")}
model = create_model(name, num_classes=6)
optimizer = torch.optim.Adam(model.parameters())
for _ in range(steps):
    x, y = torch.randn(batch, 1, size, size), torch.randint(0, 6, (batch,))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(json.dumps({**imports, "heap_after": gib("RssAnon"),
                  "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "loaded": sorted(m for m in ("sklearn", "scipy", "pandas") if m in sys.modules)}))
"""


def measure(model: str, batch: int, size: int, steps: int) -> dict:
    argv = [sys.executable, "-c", ONE_MODEL, model, str(batch), str(size), str(steps)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{model}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="CNN,att-Res,att-Res+")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    print(f"batch {args.batch_size}, 1x{args.image_size}x{args.image_size}, {args.steps} steps")
    print("| model | heap, imports | resident, imports | heap after steps | peak resident |")
    print("|---|---:|---:|---:|---:|")
    for model in args.models.split(","):
        m = measure(model, args.batch_size, args.image_size, args.steps)
        print(
            f"| {model} | {m['heap_imports']:.2f} GiB | {m['rss_imports']:.2f} GiB "
            f"| {m['heap_after']:.2f} GiB | {m['peak_rss']:.2f} GiB |"
        )
        if m["loaded"]:
            print(f"  (loaded beside torch: {', '.join(m['loaded'])})")


if __name__ == "__main__":
    main()
