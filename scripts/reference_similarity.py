"""Reference implementation of the five CLIP-Dissect similarity functions (dev-only).

Written from the formulas in the project brief (Oikarinen & Weng, ICLR 2023) and checked
against the official code (Trustworthy-ML-Lab/CLIP-dissect, similarity.py). Everything is
torch float32 on CPU. The product never imports this; it only produces golden files and
benchmark numbers.

Conventions
-----------
* ``P`` is the (N images x M concepts) CLIP similarity matrix, ``A`` the (N x K) target
  activations. Every ``score_*`` function returns a (K x M) float32 tensor.
* Top-k selection of images per neuron uses a *stable descending* sort, so equal activations
  are taken in order of lower image index first (the official code uses ``torch.topk``, whose
  tie order is unspecified).
* In ``rank_reorder`` the i-th largest CLIP similarity c (among the neuron's top images) is
  given the i-th largest activation; ties in c are broken by a stable descending sort of c,
  i.e. the image that comes earlier in the neuron's top list gets the larger activation.

The ``official_*`` functions at the bottom transcribe the official code's structure (full
softmax, per-neuron gather loop, argsort twice, batch 1500) for the benchmark and for a
cross-check; they use ``torch.topk`` exactly as the official code does.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "clip_similarity",
    "stable_topk_indices",
    "soft_wpmi",
    "wpmi",
    "rank_reorder",
    "rank_reorder_parts",
    "cos_similarity",
    "cos_similarity_cubed",
    "labels",
    "DEFAULTS",
]

DEFAULTS = {
    "soft_wpmi": {"top_k": 100, "a": 10.0, "lam": 1.0, "min_prob": 1e-7, "p_start": 0.998, "p_end": 0.97},
    "wpmi": {"top_k": 28, "a": 2.0, "lam": 0.6, "min_prob": 1e-7},
    "rank_reorder": {"top_fraction": 0.05, "p": 3.0, "scale_p": 0.5, "n_baseline_perms": 5},
    "cos_similarity": {},
    "cos_similarity_cubed": {"min_norm": 1e-3},
}


# Working precision. float32 everywhere (as the official code); set to torch.float64 only to
# measure how far a higher-precision implementation may legitimately drift from the goldens.
DTYPE = torch.float32


def _f32(x) -> torch.Tensor:
    return torch.as_tensor(x).to(DTYPE)


def clip_similarity(image_feats, text_feats) -> torch.Tensor:
    """P = normalize_rows(I) @ normalize_rows(T)^T, float32 (as utils.get_similarity_from_activations)."""
    i = _f32(image_feats).clone()
    t = _f32(text_feats).clone()
    i /= i.norm(dim=-1, keepdim=True)
    t /= t.norm(dim=-1, keepdim=True)
    return i @ t.T


def stable_topk_indices(acts, k: int) -> torch.Tensor:
    """(k x K) int64 image indices of each neuron's k largest activations, descending,
    equal activations ordered by lower image index first."""
    a = _f32(acts)
    order = torch.sort(a, dim=0, descending=True, stable=True).indices
    return order[:k]


def _prior_and_score(s: torch.Tensor, lam: float) -> torch.Tensor:
    k = s.shape[0]
    prior = torch.logsumexp(s, dim=0, keepdim=True) - torch.log(k * torch.ones([1], dtype=s.dtype))
    return s - lam * prior


def soft_wpmi(P, A, top_k=100, a=10.0, lam=1.0, min_prob=1e-7, p_start=0.998, p_end=0.97,
              return_parts=False):
    P = _f32(P)
    A = _f32(A)
    q = torch.softmax(a * P, dim=1)  # (N, M)
    inds = stable_topk_indices(A, top_k)  # (top_k, K)
    # p_r = p_start - (r / top_k) * (p_start - p_end), computed in float32 like the official code
    p_r = (p_start - (torch.arange(0, top_k) / top_k * (p_start - p_end))).to(torch.float32).to(DTYPE).unsqueeze(1)
    rows = []
    for k in range(A.shape[1]):
        qk = q[inds[:, k]]  # (top_k, M)
        rows.append(torch.sum(torch.log(1 + p_r * (qk - 1) + min_prob), dim=0))
    s = torch.stack(rows, dim=0)  # (K, M)
    score = _prior_and_score(s, lam)
    if return_parts:
        return score, {"S": s, "inds": inds}
    return score


def wpmi(P, A, top_k=28, a=2.0, lam=0.6, min_prob=1e-7, return_parts=False):
    P = _f32(P)
    A = _f32(A)
    q = torch.softmax(a * P, dim=1)
    inds = stable_topk_indices(A, top_k)
    rows = []
    for k in range(A.shape[1]):
        rows.append(torch.sum(torch.log(q[inds[:, k]] + min_prob), dim=0))
    s = torch.stack(rows, dim=0)
    score = _prior_and_score(s, lam)
    if return_parts:
        return score, {"S": s, "inds": inds}
    return score


def rank_reorder_parts(P, A, top_fraction=0.05, p=3.0, scale_p=0.5, n_baseline_perms=5, generator=None):
    """Returns dict with score (K x M), unscaled score (K x M, no baseline division),
    baseline (K,), top_n, inds (top_n x K). Uses torch.randperm(generator=...) for the baseline."""
    P = _f32(P)
    A = _f32(A)
    n = A.shape[0]
    top_n = int(n * top_fraction)
    inds = stable_topk_indices(A, top_n)  # (top_n, K), descending activation
    K, M = A.shape[1], P.shape[1]
    err = torch.empty((K, M), dtype=DTYPE)
    avg_c = torch.empty((K, M), dtype=DTYPE)
    baseline = torch.empty((K,), dtype=DTYPE)
    for k in range(K):
        v = A[inds[:, k], k]  # (top_n,) descending
        c = P[inds[:, k]]  # (top_n, M)
        # the i-th largest c gets the i-th largest v
        c_order = torch.sort(c, dim=0, descending=True, stable=True).indices  # (top_n, M)
        v_prime = torch.empty_like(c)
        v_prime.scatter_(0, c_order, v.unsqueeze(1).expand(-1, M).contiguous())
        err[k] = torch.mean(torch.abs(v.unsqueeze(1) - v_prime) ** p, dim=0)
        avg_c[k] = torch.mean(c, dim=0)
        # baseline: mean |v_asc - 5 random permutations of v_asc|^p (same randperm call order as official)
        v_asc = torch.flip(v, dims=[0])
        perms = torch.stack([v_asc[torch.randperm(top_n, generator=generator)] for _ in range(n_baseline_perms)], dim=1)
        baseline[k] = torch.mean(torch.abs(v_asc.unsqueeze(1) - perms) ** p)
    scale = avg_c ** scale_p  # NaN where the mean similarity is negative (fractional power)
    unscaled = -(err / scale)
    score = -((err / baseline.unsqueeze(1)) / scale)
    return {"score": score, "unscaled": unscaled, "baseline": baseline, "top_n": top_n, "inds": inds}


def rank_reorder(P, A, top_fraction=0.05, p=3.0, scale_p=0.5, generator=None):
    return rank_reorder_parts(P, A, top_fraction=top_fraction, p=p, scale_p=scale_p, generator=generator)["score"]


def cos_similarity(P, A):
    P = _f32(P)
    A = _f32(A)
    Pn = P / torch.norm(P, p=2, dim=0, keepdim=True)
    An = A / torch.norm(A, p=2, dim=0, keepdim=True)
    return An.T @ Pn


def cos_similarity_cubed(P, A, min_norm=1e-3):
    P = _f32(P)
    A = _f32(A)
    P = (P - torch.mean(P, dim=0, keepdim=True)) ** 3
    A = (A - torch.mean(A, dim=0, keepdim=True)) ** 3
    P = P / torch.clip(torch.norm(P, p=2, dim=0, keepdim=True), min_norm)
    A = A / torch.clip(torch.norm(A, p=2, dim=0, keepdim=True), min_norm)
    return A.T @ P


def labels(score: torch.Tensor) -> torch.Tensor:
    """argmax over concepts (torch semantics: a NaN counts as the maximum, first one wins)."""
    return torch.argmax(score, dim=1)


# ---------------------------------------------------------------------------------------
# Transcriptions of the official code's structure (device=cpu, no tqdm / cuda calls).
# ---------------------------------------------------------------------------------------

def official_soft_wpmi(clip_feats, target_feats, top_k=100, a=10, lam=1, min_prob=1e-7, p_start=0.998, p_end=0.97):
    with torch.no_grad():
        clip_feats = torch.nn.functional.softmax(a * clip_feats, dim=1)
        inds = torch.topk(target_feats, dim=0, k=top_k)[1]
        prob_d_given_e = []
        p_in_examples = p_start - (torch.arange(start=0, end=top_k) / top_k * (p_start - p_end)).unsqueeze(1)
        for orig_id in range(target_feats.shape[1]):
            curr = clip_feats.gather(0, inds[:, orig_id:orig_id + 1].expand(-1, clip_feats.shape[1]))
            curr = 1 + p_in_examples * (curr - 1)
            curr = torch.sum(torch.log(curr + min_prob), dim=0, keepdim=True)
            prob_d_given_e.append(curr)
        prob_d_given_e = torch.cat(prob_d_given_e, dim=0)
        prob_d = torch.logsumexp(prob_d_given_e, dim=0, keepdim=True) - torch.log(prob_d_given_e.shape[0] * torch.ones([1]))
        return prob_d_given_e - lam * prob_d


def official_wpmi(clip_feats, target_feats, top_k=28, a=2, lam=0.6, min_prob=1e-7):
    with torch.no_grad():
        clip_feats = torch.nn.functional.softmax(a * clip_feats, dim=1)
        inds = torch.topk(target_feats, dim=0, k=top_k)[1]
        prob_d_given_e = []
        for orig_id in range(target_feats.shape[1]):
            curr = clip_feats.gather(0, inds[:, orig_id:orig_id + 1].expand(-1, clip_feats.shape[1]))
            prob_d_given_e.append(torch.sum(torch.log(curr + min_prob), dim=0, keepdim=True))
        prob_d_given_e = torch.cat(prob_d_given_e, dim=0)
        prob_d = torch.logsumexp(prob_d_given_e, dim=0, keepdim=True) - torch.log(prob_d_given_e.shape[0] * torch.ones([1]))
        return prob_d_given_e - lam * prob_d


def official_rank_reorder(clip_feats, target_feats, p=3, top_fraction=0.05, scale_p=0.5, generator=None,
                          return_baseline=False):
    with torch.no_grad():
        batch = 1500
        errors = []
        baselines = []
        top_n = int(target_feats.shape[0] * top_fraction)
        target_feats, inds = torch.topk(target_feats, dim=0, k=top_n)
        for orig_id in range(target_feats.shape[1]):
            clip_indices = clip_feats.gather(0, inds[:, orig_id:orig_id + 1].expand([-1, clip_feats.shape[1]]))
            avg_clip = torch.mean(clip_indices, dim=0, keepdim=True)
            clip_indices = torch.argsort(clip_indices, dim=0)
            clip_indices = torch.argsort(clip_indices, dim=0)
            curr_errors = []
            target = target_feats[:, orig_id:orig_id + 1]
            sorted_target = torch.flip(target, dims=[0])
            baseline_diff = sorted_target - torch.cat(
                [sorted_target[torch.randperm(len(sorted_target), generator=generator)] for _ in range(5)], dim=1)
            baseline_diff = torch.mean(torch.abs(baseline_diff) ** p)
            baselines.append(baseline_diff)
            for i in range(math.ceil(clip_indices.shape[1] / batch)):
                clip_id = clip_indices[:, i * batch:(i + 1) * batch]
                reorg = sorted_target.expand(-1, batch).gather(dim=0, index=clip_id)
                diff = target - reorg
                curr_errors.append(torch.mean(torch.abs(diff) ** p, dim=0, keepdim=True) / baseline_diff)
            errors.append(torch.cat(curr_errors, dim=1) / (avg_clip) ** scale_p)
        errors = torch.cat(errors, dim=0)
        if return_baseline:
            return -errors, torch.stack(baselines)
        return -errors


def official_cos_similarity(clip_feats, target_feats):
    with torch.no_grad():
        clip_feats = clip_feats / torch.norm(clip_feats, p=2, dim=0, keepdim=True)
        target_feats = target_feats / torch.norm(target_feats, p=2, dim=0, keepdim=True)
        batch_size = 10000
        similarities = []
        for t_i in range(math.ceil(target_feats.shape[1] / batch_size)):
            curr = []
            curr_target = target_feats[:, t_i * batch_size:(t_i + 1) * batch_size].T
            for c_i in range(math.ceil(clip_feats.shape[1] / batch_size)):
                curr.append(curr_target @ clip_feats[:, c_i * batch_size:(c_i + 1) * batch_size])
            similarities.append(torch.cat(curr, dim=1))
        return torch.cat(similarities, dim=0)


def official_cos_similarity_cubed(clip_feats, target_feats, batch_size=10000, min_norm=1e-3):
    with torch.no_grad():
        clip_feats = clip_feats - torch.mean(clip_feats, dim=0, keepdim=True)
        target_feats = target_feats - torch.mean(target_feats, dim=0, keepdim=True)
        clip_feats = clip_feats ** 3
        target_feats = target_feats ** 3
        clip_feats = clip_feats / torch.clip(torch.norm(clip_feats, p=2, dim=0, keepdim=True), min_norm)
        target_feats = target_feats / torch.clip(torch.norm(target_feats, p=2, dim=0, keepdim=True), min_norm)
        similarities = []
        for t_i in range(math.ceil(target_feats.shape[1] / batch_size)):
            curr = []
            curr_target = target_feats[:, t_i * batch_size:(t_i + 1) * batch_size].T
            for c_i in range(math.ceil(clip_feats.shape[1] / batch_size)):
                curr.append(curr_target @ clip_feats[:, c_i * batch_size:(c_i + 1) * batch_size])
            similarities.append(torch.cat(curr, dim=1))
        return torch.cat(similarities, dim=0)
