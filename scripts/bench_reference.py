"""Time the official-structure torch reference of the CLIP-Dissect similarity functions on CPU.

Usage (from the repository root):
    python3 scripts/bench_reference.py                 # run every case, write bench/reference/results.txt
    python3 scripts/bench_reference.py --case soft_wpmi [--K 512]   # one case, prints one JSON line

Each case runs in its own subprocess (so peak RSS is per case) with torch.set_num_threads(2).
Timed work starts from raw (un-normalised) image/text features and activations:
row-normalise I and T, P = I @ T^T (float32), then the similarity function written with the
official code's structure (scripts/reference_similarity.py: official_*). If a case runs longer
than --case-timeout seconds (estimated) it is run with K divided by 4 and the per-neuron part is
extrapolated linearly to the full K (the results file says so). Whether to do that is decided
from a probe run at K/8.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

CASES = {
    # name: (function, N, M, d, K)
    "soft_wpmi": ("soft_wpmi", 10000, 20000, 512, 2048),
    "rank_reorder": ("rank_reorder", 5000, 5000, 512, 512),
    "cos_similarity": ("cos_similarity", 10000, 20000, 512, 2048),
    "wpmi": ("wpmi", 10000, 20000, 512, 2048),
    "cos_similarity_cubed": ("cos_similarity_cubed", 10000, 20000, 512, 2048),
}
ORDER = ["soft_wpmi", "rank_reorder", "cos_similarity", "wpmi", "cos_similarity_cubed"]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def make_data(N, M, d, K, seed=0):
    """Planted-style random data: each image favours one concept; neuron k fires (ReLU) on the
    images that favour its concept, plus noise."""
    import torch

    g = torch.Generator().manual_seed(seed)
    t = torch.randn(M, d, generator=g)
    t = t / t.norm(dim=1, keepdim=True)
    shared = torch.zeros(d)
    shared[0] = 1.0
    T = (shared + t) * (0.5 + 1.5 * torch.rand(M, 1, generator=g))
    fav = torch.randint(0, M, (N,), generator=g)
    I = shared + t[fav] + torch.randn(N, d, generator=g) / d ** 0.5
    neuron_concept = torch.randint(0, M, (K,), generator=g)
    A = torch.relu((fav.unsqueeze(1) == neuron_concept.unsqueeze(0)).float() * 2.0
                   + torch.randn(N, K, generator=g) - 0.5)
    return I.contiguous(), T.contiguous(), A.contiguous()


def run_case(name, K_override=None):
    import torch

    import reference_similarity as ref

    torch.set_num_threads(2)
    fn_name, N, M, d, K = CASES[name]
    K_run = K_override or K
    I, T, A = make_data(N, M, d, K_run)
    rss_inputs = rss_mib()
    fn = getattr(ref, "official_" + fn_name)
    with torch.no_grad():
        t0 = time.perf_counter()
        i = I / I.norm(dim=-1, keepdim=True)
        t = T / T.norm(dim=-1, keepdim=True)
        P = i @ t.T
        del i, t
        t1 = time.perf_counter()
        kwargs = {"generator": torch.Generator().manual_seed(0)} if fn_name == "rank_reorder" else {}
        S = fn(P, A, **kwargs)
        t2 = time.perf_counter()
        labels = torch.argmax(S, dim=1)
        t3 = time.perf_counter()
    assert S.shape == (K_run, M)
    return {
        "case": name, "function": fn_name, "N": N, "M": M, "d": d, "K": K, "K_run": K_run,
        "threads": torch.get_num_threads(),
        "t_normalise_matmul_s": round(t1 - t0, 3),
        "t_function_s": round(t2 - t1, 3),
        "t_argmax_s": round(t3 - t2, 4),
        "t_total_s": round(t3 - t0, 3),
        "rss_after_inputs_mib": round(rss_inputs, 1),
        "peak_rss_mib": round(rss_mib(), 1),
        "labels_head": labels[:4].tolist(),
    }


def lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_subprocess(name, K, timeout):
    cmd = [sys.executable, os.path.abspath(__file__), "--case", name] + (["--K", str(K)] if K else [])
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if p.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def fmt(r) -> str:
    s = (f"{r['case']:22s} N={r['N']} M={r['M']} d={r['d']} K={r['K']}"
         f"  total {r['t_total_s']:.2f} s  (normalise+matmul {r['t_normalise_matmul_s']:.2f} s, "
         f"function {r['t_function_s']:.2f} s, argmax {r['t_argmax_s']:.3f} s)"
         f"  peak RSS {r['peak_rss_mib']:.0f} MiB (inputs alone {r['rss_after_inputs_mib']:.0f} MiB)")
    if r.get("extrapolated_from_K"):
        s += (f"\n{'':22s} EXTRAPOLATED: ran K={r['extrapolated_from_K']} in "
              f"{r['measured_total_s']:.2f} s; function time scaled linearly by K; peak RSS is the K-run's")
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=ORDER)
    ap.add_argument("--K", type=int, default=None)
    ap.add_argument("--case-timeout", type=float, default=300.0)
    ap.add_argument("--cases", default=",".join(ORDER))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "reference", "results.txt"))
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.K)), flush=True)
        return

    import torch

    header = [
        "CLIP-Dissect similarity functions: official-structure torch reference on CPU",
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"cpu: {lscpu_model()} ({os.cpu_count()} logical CPUs visible), torch {torch.__version__}, "
        f"torch.set_num_threads(2), float32",
        "timed: row-normalise I,T + P = I@T^T + official_<fn>(P, A) (softmax over full P and per-neuron "
        "gather loop for (soft_)wpmi; per-neuron loop with argsort twice and batch 1500 for rank_reorder) "
        "+ argmax; data generation excluded. Peak RSS = getrusage maxrss of the case's own process "
        "(includes inputs).",
        "data: planted-style random (scripts/bench_reference.py make_data), seed 0.",
        "",
    ]
    print("\n".join(header), flush=True)
    lines = []
    for name in args.cases.split(","):
        K_full = CASES[name][4]
        # probe at K/8 to estimate the full run; if the estimate exceeds the case timeout, run at K/4
        # and extrapolate the per-neuron part linearly instead of running the full size
        probe = run_subprocess(name, max(1, K_full // 8), args.case_timeout)
        est = None if probe is None else probe["t_normalise_matmul_s"] + probe["t_function_s"] * 8
        if est is not None and est <= args.case_timeout:
            r = run_subprocess(name, None, 2 * args.case_timeout)
        else:
            r = None
        if r is None:
            K_small = max(1, K_full // 4)
            print(f"{name}: estimated {est if est is not None else 'n/a'} s at K={K_full} (> {args.case_timeout:.0f} s); "
                  f"running K={K_small} and extrapolating", flush=True)
            r = run_subprocess(name, K_small, 2 * args.case_timeout)
            if r is None:
                lines.append(f"{name:22s} did not finish even at K={K_small}")
                print(lines[-1], flush=True)
                continue
            scale = K_full / K_small
            r["extrapolated_from_K"] = K_small
            r["measured_total_s"] = r["t_total_s"]
            r["t_function_s"] = round(r["t_function_s"] * scale, 3)
            r["t_argmax_s"] = round(r["t_argmax_s"] * scale, 4)
            r["t_total_s"] = round(r["t_normalise_matmul_s"] + r["t_function_s"] + r["t_argmax_s"], 3)
        lines.append(fmt(r))
        print(lines[-1], flush=True)
        print("  raw: " + json.dumps(r), flush=True)
        lines.append("  raw: " + json.dumps(r))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write("\n".join(header + lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
