"""What this machine can do at most: the ceilings every benchmark's figure is a share of.

A wall time alone does not say whether a run is good: 60 s may be near what the CPU can
do or a tenth of it. This module measures, through the same torch/oneDNN kernels the
models run on and with the number of threads the benchmark uses,

- fp32 matrix-multiply throughput (FLOP/s) at the shapes MiniLM's linear layers have
  (hidden 384, intermediate 1536, batch x sequence rows), forward and the weight
  gradient's shape; the ceiling is the best of them;
- int8 matrix-multiply throughput, where the CPU has VNNI/AMX: torch's dynamic-quantized
  linear (what `--optimize int8` runs), activations quantized per call included;
- memory bandwidth (bytes/s) of a large copy (read plus write), what decoding is bound by.

Each figure is the best of many short samples taken over about 1.5 s: the machine is
shared with other sessions, so the best sample is the one least disturbed. The load
average at the time is recorded, and a figure taken at a one-minute load of 0.5 or more
is labelled "loaded"; a new measurement keeps the higher of it and the cached figure.

Other benchmarks import it:

    from limits import ceilings, share, encoder_training_flops
    ceil = ceilings(threads=2)                 # cached in benchmarks/results/limits.json
    share(achieved_flops_per_s, threads=2)     # fraction of the fp32 matmul ceiling

    python benchmarks/limits.py [--threads 2] [--refresh]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
CACHE = RESULTS / "limits.json"

HIDDEN, INTERMEDIATE = 384, 1536  # all-MiniLM-L6-v2
ROWS = (512, 2048)  # batch x sequence: 32 x 16 (a Banking77 batch) and 64 x 32
COPY_BYTES = 256 * 2**20  # far past the last-level cache
LOADED_AT = 0.5  # one-minute load average from which a figure is "loaded"


def _best_seconds(fn: Callable[[], Any], repeats: int, inner: int, budget: float = 1.5) -> float:
    """Seconds per call of the fastest of at least `repeats` samples of `inner` calls,
    sampling on for `budget` seconds: on a shared machine short samples are the ones
    that find the cores free."""
    fn()  # warm-up: oneDNN picks and caches its kernel on the first call
    best = float("inf")
    done, until = 0, time.perf_counter() + budget
    while done < repeats or time.perf_counter() < until:
        started = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - started) / inner)
        done += 1
    return best


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _matmul_shapes() -> list[tuple[str, int, int, int]]:
    """(name, m, k, n) of the products one MiniLM layer runs in training."""
    shapes = []
    for rows in ROWS:
        shapes += [
            (f"attention {rows}x{HIDDEN}x{HIDDEN}", rows, HIDDEN, HIDDEN),
            (f"ffn-up {rows}x{HIDDEN}x{INTERMEDIATE}", rows, HIDDEN, INTERMEDIATE),
            (f"ffn-down {rows}x{INTERMEDIATE}x{HIDDEN}", rows, INTERMEDIATE, HIDDEN),
            # the weight gradient of ffn-up: (I x rows) @ (rows x H)
            (f"ffn-up weight grad {INTERMEDIATE}x{rows}x{HIDDEN}", INTERMEDIATE, rows, HIDDEN),
        ]
    return shapes


def measure(threads: int, repeats: int = 10) -> dict[str, Any]:
    """Measure the ceilings now with `threads` torch threads (takes about 25 s)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    load = os.getloadavg()
    try:
        fp32: dict[str, float] = {}
        for name, m, k, n in _matmul_shapes():
            a, b = torch.randn(m, k), torch.randn(k, n)
            out = torch.empty(m, n)
            seconds = _best_seconds(lambda a=a, b=b, out=out: torch.mm(a, b, out=out), repeats, 2)
            fp32[name] = 2 * m * k * n / seconds
        int8: dict[str, float] = {}
        flags = _cpu_flags()
        has_int8 = bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
        if has_int8:
            from torch.ao.quantization import quantize_dynamic

            for rows in ROWS:
                for k, n in ((HIDDEN, INTERMEDIATE), (INTERMEDIATE, HIDDEN)):
                    layer = quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(k, n)), dtype=torch.qint8)
                    x = torch.randn(rows, k)
                    with torch.inference_mode():
                        seconds = _best_seconds(lambda layer=layer, x=x: layer(x), repeats, 2)
                    int8[f"dynamic-int8 linear {rows}x{k}x{n}"] = 2 * rows * k * n / seconds
        src = torch.empty(COPY_BYTES // 4).uniform_()
        dst = torch.empty_like(src)
        copy_seconds = _best_seconds(lambda: dst.copy_(src), repeats, 1)
    finally:
        torch.set_num_threads(before)
    load_after = os.getloadavg()
    return {
        "threads": threads,
        "fp32_matmul_flops": max(fp32.values()),
        "fp32_matmul_by_shape": {k: round(v) for k, v in fp32.items()},
        "int8_matmul_flops": max(int8.values()) if int8 else None,
        "int8_matmul_by_shape": {k: round(v) for k, v in int8.items()},
        "int8_note": None if has_int8 else "no VNNI/AMX on this CPU: int8 not measured",
        "memory_bandwidth_bytes_per_s": 2 * COPY_BYTES / copy_seconds,  # read + write
        "repeats": repeats,
        "load_average": [round(x, 2) for x in load],
        "load_average_after": [round(x, 2) for x in load_after],
        "conditions": "loaded" if max(load[0], load_after[0]) >= LOADED_AT else "quiet",
        "cpus": os.cpu_count(),
        "measurements": 1,
        "torch": torch.__version__,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _best_of(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Merge two measurements figure by figure, keeping the higher: a ceiling is what the
    machine can do, and on a shared machine the higher figure is the less disturbed one."""
    merged = dict(new)
    for key in ("fp32_matmul_flops", "int8_matmul_flops", "memory_bandwidth_bytes_per_s"):
        values = [v for v in (old.get(key), new.get(key)) if v]
        merged[key] = max(values) if values else None
    for key in ("fp32_matmul_by_shape", "int8_matmul_by_shape"):
        shapes = set(old.get(key, {})) | set(new.get(key, {}))
        merged[key] = {s: max(old.get(key, {}).get(s, 0), new.get(key, {}).get(s, 0)) for s in shapes}
    merged["measurements"] = old.get("measurements", 1) + 1
    merged["conditions"] = "quiet" if "quiet" in (old.get("conditions"), new["conditions"]) else "loaded"
    return merged


def ceilings(threads: int | None = None, refresh: bool = False) -> dict[str, Any]:
    """The ceilings for `threads` (default: torch's current count), measured once and
    cached in benchmarks/results/limits.json. `refresh` measures again and keeps, figure
    by figure, the higher of the new and the cached value."""
    import torch

    threads = threads or torch.get_num_threads()
    cached: dict[str, Any] = {}
    if CACHE.exists():
        cached = json.loads(CACHE.read_text())
    key = str(threads)
    if refresh or key not in cached:
        fresh = measure(threads)
        cached[key] = _best_of(cached[key], fresh) if key in cached else fresh
        RESULTS.mkdir(parents=True, exist_ok=True)
        CACHE.write_text(json.dumps(cached, indent=2))
    result: dict[str, Any] = cached[key]
    return result


def share(achieved: float, kind: str = "fp32_matmul_flops", threads: int | None = None) -> float:
    """`achieved` (FLOP/s, or bytes/s for kind "memory_bandwidth_bytes_per_s") as a
    fraction of this machine's ceiling of that kind."""
    ceiling = ceilings(threads)[kind]
    if not ceiling:
        raise ValueError(f"no {kind} ceiling measured on this machine")
    return float(achieved) / float(ceiling)


def encoder_training_flops(non_embedding_params: int, tokens: int) -> float:
    """Training FLOPs of a transformer encoder: forward (2 per weight per token) plus
    backward (twice the forward), 6 x parameters x tokens. Embedding lookups are not
    multiplications and attention's score products add under 1% at Banking77's lengths
    (4 x seq x hidden against 24 x hidden^2 per token and layer), so neither counts."""
    return 6.0 * non_embedding_params * tokens


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--refresh", action="store_true", help="measure again; keep the higher figures")
    args = parser.parse_args()
    c = ceilings(args.threads, refresh=args.refresh)
    print(f"ceilings with {c['threads']} threads ({c['conditions']}, load {c['load_average']}):")
    for name, flops in c["fp32_matmul_by_shape"].items():
        print(f"  fp32 {name:<40} {flops / 1e9:>8.1f} GFLOP/s")
    for name, flops in c["int8_matmul_by_shape"].items():
        print(f"  {name:<45} {flops / 1e9:>8.1f} GFLOP/s")
    if c["int8_note"]:
        print(f"  {c['int8_note']}")
    print(f"  fp32 matmul ceiling {c['fp32_matmul_flops'] / 1e9:.1f} GFLOP/s")
    if c["int8_matmul_flops"]:
        print(f"  int8 matmul ceiling {c['int8_matmul_flops'] / 1e9:.1f} GOP/s")
    print(f"  memory bandwidth (copy) {c['memory_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s")
    print(f"cached in {CACHE}")


if __name__ == "__main__":
    main()
