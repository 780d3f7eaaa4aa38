#!/usr/bin/env python3
"""Golden values for src/numeric/trust-metrics.ts (a dev tool; the tests never run Python).

    python3 scripts/make_trust_golden.py     # rewrites test/golden/trust/metrics.json

Each case holds activations (float32 values, some tied), a binary presence vector and the activations binarised
as topFractionMask does (the ceil(fraction * n) largest, ties by lower index: a stable argsort of -x), and
scikit-learn's average_precision_score, f1_score, jaccard_score, numpy's corrcoef and the cosine on them; plus
scipy.stats.kstest against U(0, 1) on seeded samples.
"""

import json
import math
import os

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score, f1_score, jaccard_score

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'golden', 'trust', 'metrics.json')


def top_mask(x, fraction):
    k = min(len(x), max(1, math.ceil(fraction * len(x) - 1e-9)))
    m = np.zeros(len(x), dtype=np.int64)
    m[np.argsort(-x, kind='stable')[:k]] = 1
    return m


def main():
    rng = np.random.default_rng(12)
    cases = []
    specs = [
        ('random', 200, 0.1, 0.05, False),
        ('ties', 150, 0.2, 0.1, True),
        ('planted', 300, 0.05, 0.05, False),
        ('small', 12, 0.3, 0.25, True),
        ('all-present-ish', 40, 0.9, 0.5, True),
    ]
    for name, n, prevalence, fraction, ties in specs:
        presence = (rng.random(n) < prevalence).astype(np.int64)
        if presence.sum() == 0:
            presence[0] = 1
        x = rng.normal(size=n) + (1.5 * presence if name == 'planted' else 0.3 * presence)
        if ties:
            x = np.round(x * 2) / 2  # many equal activations
        x = x.astype(np.float32).astype(np.float64)
        active = top_mask(x, fraction)
        cases.append({
            'name': name,
            'fraction': fraction,
            'activations': x.tolist(),
            'presence': presence.tolist(),
            'active': active.tolist(),
            'correlation': float(np.corrcoef(x, presence)[0, 1]),
            'cosine': float(x @ presence / (np.linalg.norm(x) * np.linalg.norm(presence))),
            'auprc': float(average_precision_score(presence, x)),
            'f1': float(f1_score(presence, active)),
            'iou': float(jaccard_score(presence, active)),
        })
    ks = []
    for name, sample in [
        ('uniform', rng.random(300)),
        ('skewed', rng.random(300) ** 1.5),
        ('small', rng.random(25)),
    ]:
        r = stats.kstest(sample, 'uniform', method='asymp')
        ks.append({'name': name, 'values': sample.tolist(), 'd': float(r.statistic), 'p': float(r.pvalue)})
    with open(OUT, 'w') as f:
        json.dump({'metrics': cases, 'ks': ks}, f)
        f.write('\n')
    print(f'wrote {OUT}')


if __name__ == '__main__':
    main()
