"""Write golden test cases for the five similarity functions to test/golden/similarity/.

Run from the repository root:  python3 scripts/make_similarity_golden.py
Needs torch + numpy (dev only). Deterministic: every case is generated from a fixed seed.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_similarity as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "golden", "similarity")
FUNCS = ["soft_wpmi", "wpmi", "rank_reorder", "cos_similarity", "cos_similarity_cubed"]
BASELINE_SEED = 1234  # torch.Generator seed for rank_reorder's random baseline permutations


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def features_with_shared_direction(rng, n, m, d, shared=1.0, favoured=None, signal=1.0, noise=1.0):
    """Image/text features whose cosine similarities are all positive (as with real CLIP,
    where image-text cosines sit around 0.2-0.3). rank_reorder divides by (mean c)^0.5, which
    is NaN for a negative mean, so the golden cases keep P > 0 everywhere."""
    u = np.zeros(d)
    u[0] = 1.0
    t = rng.standard_normal((m, d))
    t[:, 0] = 0.0
    t = unit_rows(t)
    T = shared * u + t
    x = rng.standard_normal((n, d)) / np.sqrt(d) * noise
    x[:, 0] = 0.0
    if favoured is not None:
        x = x + signal * t[favoured]
    I = shared * u + x
    # store raw (un-normalised) features with varied norms, so consumers must normalise
    I = I * rng.uniform(0.5, 2.0, size=(n, 1))
    T = T * rng.uniform(0.5, 2.0, size=(m, 1))
    return I.astype(np.float32), T.astype(np.float32)


def run_all(I, T, A, params, seed=BASELINE_SEED):
    P = ref.clip_similarity(I, T)
    A_t = torch.as_tensor(A)
    out = {"P": P}
    out["soft_wpmi"], sw = ref.soft_wpmi(P, A_t, **params["soft_wpmi"], return_parts=True)
    out["wpmi"], w = ref.wpmi(P, A_t, **params["wpmi"], return_parts=True)
    g = torch.Generator().manual_seed(seed)
    rr = ref.rank_reorder_parts(P, A_t, generator=g, **{k: v for k, v in params["rank_reorder"].items()
                                                         if k in ("top_fraction", "p", "scale_p")})
    out["rank_reorder"] = rr["score"]
    out["rank_reorder_unscaled"] = rr["unscaled"]
    out["rank_reorder_baseline"] = rr["baseline"]
    out["cos_similarity"] = ref.cos_similarity(P, A_t)
    out["cos_similarity_cubed"] = ref.cos_similarity_cubed(P, A_t, **params["cos_similarity_cubed"])
    out["inds"] = {"soft_wpmi": sw["inds"], "wpmi": w["inds"], "rank_reorder": rr["inds"]}
    out["top_n"] = rr["top_n"]
    return out


def check_no_ties(A, k_max, skip_cols=()):
    for k in range(A.shape[1]):
        if k in skip_cols:
            continue
        col = np.sort(A[:, k])[::-1][: k_max + 1]
        assert len(np.unique(col)) == len(col), f"tie among top activations of neuron {k}"


def cross_check_official(I, T, A, params, out, cols, tag):
    """Compare with a transcription of the official code (torch.topk, argsort twice)."""
    P = ref.clip_similarity(I, T)
    A_t = torch.as_tensor(A)[:, cols]
    mine = run_all(I, T, A[:, cols], params)
    sw = ref.official_soft_wpmi(P, A_t, **params["soft_wpmi"])
    w = ref.official_wpmi(P, A_t, **params["wpmi"])
    rp = {k: v for k, v in params["rank_reorder"].items() if k in ("top_fraction", "p", "scale_p")}
    rr = ref.official_rank_reorder(P, A_t, generator=torch.Generator().manual_seed(BASELINE_SEED), **rp)
    cs = ref.official_cos_similarity(P, A_t)
    cc = ref.official_cos_similarity_cubed(P, A_t, min_norm=params["cos_similarity_cubed"]["min_norm"])
    worst = {}
    for name, theirs in [("soft_wpmi", sw), ("wpmi", w), ("rank_reorder", rr), ("cos_similarity", cs),
                         ("cos_similarity_cubed", cc)]:
        a, b = mine[name].numpy(), theirs.numpy()
        rel = np.nanmax(np.abs(a - b) / np.maximum(np.abs(b), 1e-6))
        same_nan = bool(np.array_equal(np.isnan(a), np.isnan(b)))
        worst[name] = float(rel)
        assert same_nan and rel < 1e-4, (tag, name, rel, same_nan)
    print(f"  [{tag}] matches official-structure code on neurons {cols[0]}..{cols[-1]}: max rel diff "
          + ", ".join(f"{k}={v:.1e}" for k, v in worst.items()))


def write_case(name, I, T, A, params, extra_meta, save_P=True, extra_arrays=None):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    out = run_all(I, T, A, params)
    np.save(os.path.join(d, "I.npy"), np.ascontiguousarray(I, dtype=np.float32))
    np.save(os.path.join(d, "T.npy"), np.ascontiguousarray(T, dtype=np.float32))
    np.save(os.path.join(d, "A.npy"), np.ascontiguousarray(A, dtype=np.float32))
    if save_P:
        np.save(os.path.join(d, "P.npy"), out["P"].numpy().astype(np.float32))
    labels = {}
    nan_rows = {}
    margins = {}
    for f in FUNCS + ["rank_reorder_unscaled"]:
        s = out[f].numpy().astype(np.float32)
        np.save(os.path.join(d, f"score_{f}.npy"), s)
        lab = ref.labels(out[f]).numpy().astype(np.int64)
        # official describe_neurons.py uses torch.max(similarities, dim=1); check it agrees
        assert np.array_equal(lab, torch.max(out[f], dim=1).indices.numpy()), f
        np.save(os.path.join(d, f"labels_{f}.npy"), lab)
        srt = np.sort(np.where(np.isnan(s), -np.inf, s).astype(np.float64), axis=1)[:, ::-1]
        with np.errstate(invalid="ignore"):
            margins[f] = [float(x) if np.isfinite(x) else None for x in (srt[:, 0] - srt[:, 1])]
        labels[f] = lab
        nan_rows[f] = [int(k) for k in range(s.shape[0]) if np.isnan(s[k]).any()]
    for fname, arr in (extra_arrays or {}).items():
        np.save(os.path.join(d, fname), arr)
    np.save(os.path.join(d, "rank_reorder_baseline.npy"), out["rank_reorder_baseline"].numpy().astype(np.float32))
    for f, ind in out["inds"].items():
        np.save(os.path.join(d, f"topk_indices_{f}.npy"), ind.numpy().astype(np.int64))
    dead = {}
    for k in extra_meta.get("dead_neurons", []):
        per_f = {}
        for f in FUNCS + ["rank_reorder_unscaled"]:
            row = out[f][k].numpy()
            per_f[f] = {"n_nan": int(np.isnan(row).sum()), "n_finite": int(np.isfinite(row).sum()),
                        "all_equal": bool(np.all(row == row[0])) if np.isfinite(row).all() else None,
                        "label": int(labels[f][k])}
        dead[str(k)] = per_f
    if dead:
        extra_meta = {**extra_meta, "dead_neuron_reference_behaviour": dead,
                      "dead_neuron_note": "soft_wpmi/wpmi: finite scores from images 0..top_k-1 (stable tie order on "
                                          "all-zero activations); that row ALSO enters the logsumexp prior, so every "
                                          "other neuron's soft_wpmi/wpmi score depends on it. cos_similarity: 0/0 -> "
                                          "all NaN. cos_similarity_cubed: norm clipped to min_norm -> all 0. "
                                          "rank_reorder: baseline 0 -> 0/0 -> all NaN; rank_reorder_unscaled: -0/x -> "
                                          "all -0.0. Labels of all-NaN / all-equal rows are 0."}
    # how far an honest float64 implementation lands from these float32 goldens (tolerance guide)
    ref.DTYPE = torch.float64
    try:
        hi = run_all(I, T, A, params)
    finally:
        ref.DTYPE = torch.float32
    drift = {}
    for f in FUNCS + ["rank_reorder_unscaled"]:
        a, b = out[f].numpy().astype(np.float64), hi[f].numpy()
        fin = np.isfinite(a) & np.isfinite(b)
        assert np.array_equal(np.isfinite(a), np.isfinite(b)), f
        hi_lab = torch.argmax(hi[f], dim=1).numpy()
        drift[f] = {"max_abs": float(np.abs(a - b)[fin].max()) if fin.any() else 0.0,
                    "max_rel": float((np.abs(a - b) / np.maximum(np.abs(b), 1e-3))[fin].max()) if fin.any() else 0.0,
                    "labels_equal": bool(np.array_equal(hi_lab, labels[f]))}
    extra_meta = {**extra_meta, "float64_recompute_drift": drift,
                  "float64_recompute_note": "the same formulas evaluated in float64 (same baseline permutations) vs "
                                            "the stored float32 scores; max_rel uses max(|x|, 1e-3) as denominator"}
    N, dim = I.shape
    M = T.shape[0]
    K = A.shape[1]
    meta = {
        "name": name,
        "N": N, "M": M, "d": dim, "K": K,
        "dtype": "float32",
        "P_definition": "P = normalize_rows(I) @ normalize_rows(T)^T (I, T stored un-normalised)",
        "params": {
            "soft_wpmi": params["soft_wpmi"],
            "wpmi": params["wpmi"],
            "rank_reorder": {**params["rank_reorder"], "top_n": out["top_n"],
                             "top_n_rule": "floor(N * top_fraction) computed in float64",
                             "baseline": "torch.randperm with torch.Generator().manual_seed(baseline_seed), 5 perms "
                                         "per neuron, neurons in order; not reproducible outside torch",
                             "baseline_seed": BASELINE_SEED},
            "cos_similarity": params["cos_similarity"],
            "cos_similarity_cubed": params["cos_similarity_cubed"],
        },
        "tie_break": "top-k images per neuron: stable descending sort of activations (equal values -> lower "
                     "image index first); rank_reorder concept similarities: stable descending sort (equal c -> "
                     "earlier position in the neuron's top list gets the larger activation)",
        "label_rule": "labels_F[k] = argmax_m score_F[k, m] (torch.argmax / torch.max: a NaN counts as the "
                      "maximum; an all-NaN row gives 0)",
        "nan_rows": nan_rows,
        "label_margin": margins,
        "label_margin_note": "per neuron: best minus second-best score (float64 of the float32 scores); null for "
                             "all-NaN rows. A label is only meaningful to compare where its margin is well above "
                             "the score tolerance; 0 means an exact tie (torch then returns the first index)",
        "files": sorted(os.listdir(d)) + ["case.json"],
        **extra_meta,
    }
    with open(os.path.join(d, "case.json"), "w") as fh:
        json.dump(meta, fh, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist") else o)
        fh.write("\n")
    return out, labels


def default_params(top_k_soft=100, top_k_wpmi=28, top_fraction=0.05):
    p = {k: dict(v) for k, v in ref.DEFAULTS.items()}
    p["soft_wpmi"]["top_k"] = top_k_soft
    p["wpmi"]["top_k"] = top_k_wpmi
    p["rank_reorder"]["top_fraction"] = top_fraction
    return p


def case_random():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    N, M, d, K = 64, 40, 16, 12
    I, T = features_with_shared_direction(rng, N, M, d, shared=1.0)
    P = ref.clip_similarity(I, T).numpy()
    assert (P > 0).all()
    # continuous non-negative activations (softplus), loosely tied to random concepts
    Pz = (P - P.mean(0)) / P.std(0)
    mix = rng.standard_normal((M, K - 1)) * (rng.random((M, K - 1)) < 0.1)
    Z = 0.8 * (Pz @ mix) + rng.standard_normal((N, K - 1)) - 0.5
    A = np.zeros((N, K), dtype=np.float32)
    A[:, : K - 1] = softplus(Z).astype(np.float32)
    assert (A[:, : K - 1] > 0).all()
    check_no_ties(A, N - 1, skip_cols=(K - 1,))
    params = default_params(top_k_soft=20, top_k_wpmi=10, top_fraction=0.25)
    meta = {
        "description": "random features (all cosines positive), softplus activations with no ties, "
                       "last neuron (index K-1) dead: all-zero activations",
        "seed": 0,
        "dead_neurons": [K - 1],
    }
    # soft_wpmi / wpmi of the live neurons depend on the dead one through the prior; also give the
    # scores with the dead neuron left out of the computation entirely (for a flag-and-exclude policy)
    live = torch.as_tensor(A[:, : K - 1])
    P_t = ref.clip_similarity(I, T)
    extra = {
        "score_soft_wpmi_without_dead.npy": ref.soft_wpmi(P_t, live, **params["soft_wpmi"]).numpy().astype(np.float32),
        "score_wpmi_without_dead.npy": ref.wpmi(P_t, live, **params["wpmi"]).numpy().astype(np.float32),
    }
    meta["without_dead_note"] = ("score_{soft_wpmi,wpmi}_without_dead.npy are (K-1) x M: the same functions run on "
                                 "A[:, :K-1] only, i.e. the dead neuron excluded from the logsumexp prior. The other "
                                 "functions' live rows do not depend on the dead neuron.")
    out, labels = write_case("random", I, T, A, params, meta, extra_arrays=extra)
    for f, arr in extra.items():
        full = out[f.replace("score_", "").replace("_without_dead.npy", "")].numpy()[: K - 1]
        print(f"  {f}: max |diff| vs full-K rows = {np.abs(full - arr).max():.3g}; labels equal: "
              f"{np.array_equal(full.argmax(1), arr.argmax(1))}")
    cross_check_official(I, T, A, params, out, list(range(K - 1)), "random, live neurons")
    return out, labels, I, T, A, params


def planted_like(rng, N, M, d, K, concept_of_neuron, signal=1.0, noise=1.0, shared=1.0, gain=3.0, act_noise=0.5,
                 common=0.0):
    favoured = rng.integers(0, M, size=N)
    I, T = features_with_shared_direction(rng, N, M, d, shared=shared, favoured=favoured, signal=signal, noise=noise)
    P = ref.clip_similarity(I, T).numpy()
    assert (P > 0).all()
    A = np.empty((N, K), dtype=np.float32)
    # optional driver shared by all neurons (keeps soft_wpmi away from its log(K) saturation)
    drive = rng.standard_normal(N) if common else np.zeros(N)
    for k, m in enumerate(concept_of_neuron):
        z = (P[:, m] - P[:, m].mean()) / P[:, m].std()
        A[:, k] = softplus(common * drive + gain * z + act_noise * rng.standard_normal(N) - 1.0)
    return I, T, A, favoured


def case_planted():
    rng = np.random.default_rng(1)
    torch.manual_seed(1)
    N, M, d, K = 200, 30, 32, 30
    I, T, A, fav = planted_like(rng, N, M, d, K, list(range(K)), signal=1.0, noise=1.0)
    params = default_params(top_k_soft=20, top_k_wpmi=10, top_fraction=0.1)
    check_no_ties(A, 25)
    meta = {
        "description": "neuron k responds to concept k: each image favours one random concept; "
                       "A[:,k] = softplus(3*zscore(P[:,k]) + 0.5*noise - 1). Every function must give labels_F[k] == k",
        "seed": 1,
        "expected_labels": list(range(K)),
        "dead_neurons": [],
    }
    out, labels = write_case("planted", I, T, A, params, meta)
    cross_check_official(I, T, A, params, out, list(range(K)), "planted")
    ok = {}
    for f in FUNCS + ["rank_reorder_unscaled"]:
        ok[f] = bool(np.array_equal(labels[f], np.arange(K)))
        print(f"  planted: {f:24s} recovers identity: {ok[f]}"
              + ("" if ok[f] else f"  (wrong neurons: {np.nonzero(labels[f] != np.arange(K))[0].tolist()})"))
    assert all(ok.values()), ok
    return ok


def case_ties():
    rng = np.random.default_rng(2)
    N, M, d, K = 12, 5, 4, 3
    I, T = features_with_shared_direction(rng, N, M, d, shared=1.0, noise=1.0)
    P = ref.clip_similarity(I, T).numpy()
    assert (P > 0).all()
    A = np.array([
        [0.5, 3, 1, 3, 2, 3, 0.25, 2, 0, 0, 1, 2],      # ties at 3 (imgs 1,3,5) and at the top-4 cutoff (2: imgs 4,7,11)
        [0, 0, 0, 1.5, 0, 0, 0, 0, 0, 0.75, 0, 0],      # ReLU-like: only 2 positives, top-k must fill with zeros 0,1,..
        [1, 1, 2, 1, 1, 1, 1, 2, 1, 1, 1, 1],           # ties everywhere: top-3 = [2,7,0], top-4 = [2,7,0,1]
    ], dtype=np.float32).T
    params = default_params(top_k_soft=4, top_k_wpmi=3, top_fraction=0.35)
    expected = {
        "soft_wpmi": [[1, 3, 5, 4], [3, 9, 0, 1], [2, 7, 0, 1]],
        "wpmi": [[1, 3, 5], [3, 9, 0], [2, 7, 0]],
        "rank_reorder": [[1, 3, 5, 4], [3, 9, 0, 1], [2, 7, 0, 1]],
    }
    meta = {
        "description": "exact activation ties (values exactly representable); pins lower-index-first tie-breaking",
        "seed": 2,
        "expected_topk_indices": {f: {"per_neuron": v, "note": "topk_indices_F.npy is (k x K): column k = neuron k"}
                                  for f, v in expected.items()},
        "dead_neurons": [],
    }
    out, labels = write_case("ties", I, T, A, params, meta)
    for f, v in expected.items():
        got = out["inds"][f].numpy().T.tolist()
        assert got == v, (f, got, v)
    # make sure the tie order actually changes the answer: recompute with the opposite tie order
    perm = np.arange(N)[::-1].copy()
    rev = run_all(I[perm], T, A[perm], params)
    for f in ["soft_wpmi", "wpmi", "rank_reorder_unscaled"]:
        diff = float(np.nanmax(np.abs(out[f].numpy() - rev[f].numpy())))
        print(f"  ties: {f:24s} score change if ties went to the HIGHER index: {diff:.3g}")
        assert diff > 1e-4, f
    return out


def case_default():
    rng = np.random.default_rng(3)
    torch.manual_seed(3)
    N, M, d, K = 2200, 60, 16, 8
    concepts = [3 + 7 * k for k in range(K)]
    I, T, A, _ = planted_like(rng, N, M, d, K, concepts, signal=0.7, noise=1.0, shared=1.5,
                              gain=0.3, act_noise=0.3, common=2.0)
    params = default_params()
    check_no_ties(A, 120)
    meta = {
        "description": "all default hyperparameters (top_k=100, wpmi top_k=28, top_fraction=0.05 -> top_n=110); "
                       "A[:,k] = softplus(2*shared_drive + 0.3*zscore(P[:,3+7k]) + 0.3*noise - 1): a strong driver common "
                       "to all neurons plus a weak planted concept, because with K=8 and lam=1 soft_wpmi scores "
                       "saturate at log(K) (ties in float32) when neurons differ much",
        "seed": 3,
        "planted_concepts": concepts,
        "dead_neurons": [],
    }
    out, labels = write_case("default_params", I, T, A, params, meta)
    cross_check_official(I, T, A, params, out, list(range(K)), "default_params")
    for f in FUNCS + ["rank_reorder_unscaled"]:
        print(f"  default_params: {f:24s} labels {labels[f].tolist()} (planted {concepts})")
    return out


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    print("case random")
    out, labels, I, T, A, params = case_random()
    K = A.shape[1]
    print("  dead neuron (last column) in the reference:")
    for f in FUNCS + ["rank_reorder_unscaled"]:
        row = out[f][K - 1].numpy()
        print(f"    {f:24s} nan={int(np.isnan(row).sum())}/{row.size} finite={int(np.isfinite(row).sum())} "
              f"min={np.nanmin(row) if np.isfinite(row).any() else 'nan'} max={np.nanmax(row) if np.isfinite(row).any() else 'nan'} label={labels[f][K-1]}")
    print("  dead neuron top-k indices (stable):", out["inds"]["soft_wpmi"][:, K - 1].tolist())
    print("  torch.topk on the dead column picks:", torch.topk(torch.as_tensor(A), dim=0, k=20)[1][:, K - 1].tolist())
    print("case planted")
    case_planted()
    print("case ties")
    case_ties()
    print("case default_params")
    case_default()
    total = 0
    for dp, _, fs in os.walk(OUT):
        for f in fs:
            total += os.path.getsize(os.path.join(dp, f))
    print(f"golden folder {OUT}: {total} bytes ({total / 1e6:.3f} MB)")
    assert total < 1.5e6


if __name__ == "__main__":
    main()
