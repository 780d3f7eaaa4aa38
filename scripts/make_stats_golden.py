#!/usr/bin/env python3
"""Golden values for src/numeric/stats.ts (a dev tool; the tests never run Python).

    python3 scripts/make_stats_golden.py     # rewrites test/golden/stats/stats.json

- betainc: scipy.special.betainc(a, b, x) on a grid, plus mpmath's log10 of I_x(a, b) where it underflows.
- pearson: scipy.stats.pearsonr(x, y) for seeded random vectors (the vectors are stored, rounded to float32
  values so that the TypeScript side reads the same numbers), and mpmath's log10 p for a large-n case.
"""

import json
import os

import mpmath
import numpy as np
from scipy import special, stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'golden', 'stats', 'stats.json')

mpmath.mp.dps = 50


def log10_betainc_quad(a, b, x):
    """log10 I_x(a, b) = log10(x^a / B(a, b) * integral_0^1 u^(a-1) (1 - x u)^(b-1) du), by quadrature in
    s = 1 - u with nodes where the integrand (about exp(-a s)) falls; for large a, where the series is slow."""
    a, b, x = mpmath.mpf(a), mpmath.mpf(b), mpmath.mpf(x)

    def f(s):
        return mpmath.exp((a - 1) * mpmath.log1p(-s)) * (1 - x * (1 - s)) ** (b - 1)

    pts = sorted({mpmath.mpf(0), mpmath.mpf(1), *(k / a for k in (1, 5, 20, 80, 320) if k / a < 1)})
    return float(mpmath.log10(mpmath.quad(f, pts)) + a * mpmath.log10(x) - mpmath.log10(mpmath.beta(a, b)))


def log10_betainc(a, b, x):
    try:
        return float(mpmath.log10(mpmath.betainc(a, b, 0, x, regularized=True)))
    except mpmath.libmp.NoConvergence:
        return log10_betainc_quad(a, b, x)


def main():
    beta = []
    for a in [0.5, 1, 2.5, 10, 49, 1000, 1e5]:
        for b in [0.5, 1, 3, 20]:
            for x in [1e-6, 0.01, 0.3, 0.5, 0.77, 0.99, 0.999999]:
                beta.append({'a': a, 'b': b, 'x': x, 'value': float(special.betainc(a, b, x)),
                             'log10': log10_betainc(a, b, x)})
    # values that underflow a double: only the log is meaningful
    tiny = []
    for a, b, x in [(1e6, 0.5, 0.9856), (5e5, 0.5, 0.99), (2000, 0.5, 1e-3)]:
        tiny.append({'a': a, 'b': b, 'x': x, 'log10': log10_betainc_quad(a, b, x)})

    rng = np.random.default_rng(0)
    cases = []
    for n, rho in [(3, 0.5), (4, 0.2), (10, 0.0), (50, 0.3), (500, 0.1), (2000, 0.6)]:
        x = rng.standard_normal(n).astype(np.float32)
        y = (rho * x + np.sqrt(1 - rho * rho) * rng.standard_normal(n)).astype(np.float32)
        res = stats.pearsonr(x.astype(np.float64), y.astype(np.float64))
        r = float(res.statistic)
        # log10 p from the exact formula in high precision: I_{1-r^2}((n-2)/2, 1/2)
        lp = float('-inf') if n == 2 else log10_betainc((n - 2) / 2, 0.5, 1 - mpmath.mpf(r) ** 2)
        cases.append({'n': n, 'x': [float(v) for v in x], 'y': [float(v) for v in y], 'r': r,
                      'p': float(res.pvalue), 'log10p': lp})
    # the paper's regime: 2 million pairs, r = 0.12 (p underflows; scipy says 0)
    big = {'n': 2048000, 'r': 0.12, 'p': float(stats.beta(2048000 / 2 - 1, 2048000 / 2 - 1, loc=-1, scale=2).sf(0.12) * 2),
           'log10p': log10_betainc_quad((2048000 - 2) / 2, 0.5, 1 - mpmath.mpf('0.12') ** 2)}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump({'scipy': __import__('scipy').__version__, 'betainc': beta, 'betaincTiny': tiny,
                   'pearson': cases, 'pearsonBig': big}, f, indent=1)
        f.write('\n')
    print(f'wrote {OUT}: {len(beta)} betainc values, {len(cases)} pearson cases')


if __name__ == '__main__':
    main()
