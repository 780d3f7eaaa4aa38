import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ArgumentError } from '../../src/numeric/errors.js';
import { SIMILARITY_FUNCTIONS, similarityDefinition } from '../../src/numeric/similarity-functions/index.js';
import {
  DEFAULT_SIMILARITY,
  resolveSimilarityOptions,
  SIMILARITY_DEFAULTS,
  SIMILARITY_DESCRIPTIONS,
  SIMILARITY_NAMES,
} from '../../src/numeric/similarity-options.js';
import { similarityReference } from '../../src/numeric/similarity-reference.js';
import { handCase } from '../helpers/data.js';

describe('similarity registry: one definition per function', () => {
  it('the names, defaults and descriptions are the registry’s, in its order', () => {
    assert.deepEqual(SIMILARITY_NAMES, [
      'soft_wpmi',
      'wpmi',
      'rank_reorder',
      'cos_similarity',
      'cos_similarity_cubed',
    ]);
    assert.deepEqual([...SIMILARITY_NAMES], Object.keys(SIMILARITY_FUNCTIONS));
    assert.ok(SIMILARITY_NAMES.includes(DEFAULT_SIMILARITY));
    for (const f of SIMILARITY_NAMES) {
      assert.equal(SIMILARITY_DEFAULTS[f], similarityDefinition(f).defaults, f);
      assert.match(SIMILARITY_DESCRIPTIONS[f], /^[^\n]{10,100}$/, f);
      // the defaults pass the function's own checks (paper Appendix A.1 with 1000 probe images)
      assert.deepEqual(resolveSimilarityOptions(f, undefined, 1000), { ...SIMILARITY_DEFAULTS[f] }, f);
    }
  });

  it('options a definition does not declare are refused with the declared ones', () => {
    assert.throws(
      () => resolveSimilarityOptions('wpmi', { pStart: 0.9 } as never, 100),
      (e: unknown) =>
        e instanceof ArgumentError &&
        /wpmi: unknown option 'pStart'; valid options are 'topK', 'a', 'lambda' or 'minProb'/.test(e.message),
    );
    assert.throws(
      () => resolveSimilarityOptions('cos_similarity', { minNorm: 1 } as never, 100),
      /cos_similarity: unknown option 'minNorm'; it takes no options/,
    );
  });

  it('similarityReference runs the definition’s reference with the checked options', () => {
    const given = { soft_wpmi: { topK: 2 }, wpmi: { topK: 2 }, rank_reorder: { topFraction: 1 } } as const;
    for (const f of SIMILARITY_NAMES) {
      const options = (given as Record<string, object>)[f] ?? {};
      const o = resolveSimilarityOptions(f, options as never, 3);
      assert.deepEqual(
        similarityReference(f, handCase(), options as never),
        similarityDefinition(f).reference(handCase(), o as never),
        f,
      );
    }
  });

  it('forRows scales the options that count images for a run on a subset (trust reruns)', () => {
    const soft = similarityDefinition('soft_wpmi');
    const o = { ...soft.defaults, topK: 10 };
    assert.equal(soft.forRows?.(o, 50, 100).topK, 5);
    assert.equal(soft.forRows?.(o, 3, 100).topK, 1);
    assert.equal(soft.forRows?.(o, 100, 100), o);
    assert.equal(similarityDefinition('wpmi').forRows?.({ ...o, topK: 40 }, 30, 60).topK, 20);
    const rr = similarityDefinition('rank_reorder');
    assert.equal(rr.forRows?.({ ...rr.defaults }, 10, 100).topFraction, 0.1);
    assert.equal(rr.forRows?.({ ...rr.defaults }, 40, 100).topFraction, 0.05);
    assert.equal(similarityDefinition('cos_similarity').forRows, undefined);
  });

  it('each definition names its engine kernel with the kernel’s parameters', () => {
    const soft = similarityDefinition('soft_wpmi').kernel(
      resolveSimilarityOptions('soft_wpmi', { topK: 4 }, 10),
    );
    assert.equal(soft.kind, 'pmi');
    if (soft.kind !== 'pmi') return;
    // p_r falls linearly from pStart to pEnd at rank topK; each factor is (1 − p_r + minProb) + p_r·Q
    const pWant = [0.998, 0.991, 0.984, 0.977];
    for (let r = 0; r < 4; r++) {
      assert.ok(Math.abs(soft.p[r] - pWant[r]) < 1e-12, `p[${r}] = ${soft.p[r]}`);
      assert.ok(Math.abs(soft.c[r] - (1 - pWant[r] + 1e-7)) < 1e-12, `c[${r}] = ${soft.c[r]}`);
    }
    const kinds = SIMILARITY_NAMES.map(
      (f) => similarityDefinition(f).kernel(resolveSimilarityOptions(f, undefined, 1000)).kind,
    );
    assert.deepEqual(kinds, ['pmi', 'pmi', 'rank_reorder', 'cos', 'cos_cubed']);
  });
});
