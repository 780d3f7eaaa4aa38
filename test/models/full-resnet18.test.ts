/**
 * Full-size torchvision resnet18 (random weights), exported by
 * `python3 scripts/export_target_models.py --verify-full DIR` (about 140 MB, never committed). Runs only when
 * CLIP_DISSECT_FULL_RESNET18=DIR is set; skipped otherwise.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { npyToMatrix, readNpy } from '../../src/io/npy.js';
import { analyseModules } from '../../src/models/_module-tree.js';
import { graphView, loadOnnxModel } from '../../src/models/_onnx-graph-edit.js';
import { createOnnxTargetModel } from '../../src/models/onnx-target-model.js';
import { relativeError } from './helpers.js';

const DIR = process.env.CLIP_DISSECT_FULL_RESNET18 ?? '';
const skip =
  DIR === '' || !existsSync(join(DIR, 'modules.json')) ? 'set CLIP_DISSECT_FULL_RESNET18=DIR' : false;

const EXPORTS = [
  ['resnet18_ts.onnx', 'TorchScript'],
  ['resnet18_ts_nofold.onnx', 'TorchScript, no constant folding'],
  ['resnet18_dynamo.onnx', 'dynamo'],
] as const;

/** The PyTorch module whose hook output a layer must equal (hooks of a shared ReLU keep its last call). */
function hookModule(layer: string, file: string): string | null {
  if (/^layer\d\.\d\.relu$/.test(layer)) return null; // first call: the hook was overwritten by the second
  if (/^layer\d\.\d\.relu_1$/.test(layer)) return layer.slice(0, -2);
  if (file === 'resnet18_ts.onnx') {
    // folded: conv reads bn(conv(x))
    if (layer === 'conv1') return 'bn1';
    if (/\.conv\d$/.test(layer)) return layer.replace(/conv(\d)$/, 'bn$1');
    if (/downsample\.0$/.test(layer)) return layer.replace(/0$/, '1');
  }
  return layer;
}

describe('full-size torchvision resnet18', { skip }, () => {
  for (const [file, label] of EXPORTS) {
    test(`${label}: exactly one tensor per module call, every module found`, async (t) => {
      const loaded = await loadOnnxModel(join(DIR, file));
      const a = analyseModules(graphView(loaded));
      for (const c of a.calls)
        assert.equal(c.outputs.length, 1, `${c.module}#${c.call}: ${c.outputs.join(', ')}`);
      const modules: string[] = JSON.parse(readFileSync(join(DIR, 'modules.json'), 'utf8')).modules;
      const m = await createOnnxTargetModel(join(DIR, file));
      try {
        const names = new Set(m.layers().map((l) => l.name));
        const missing = modules.filter((n) => !names.has(n));
        const expectedMissing = modules.filter((n) =>
          file === 'resnet18_ts.onnx'
            ? /(^|\.)bn\d$|downsample\.1$/.test(n)
            : file === 'resnet18_dynamo.onnx'
              ? /(^|\.)conv\d$|downsample\.0$/.test(n)
              : false,
        );
        assert.deepEqual(missing, expectedMissing);
        for (const l of m.layers()) assert.ok(!l.warnings.some((w) => /hands \d+ tensors/.test(w)), l.name);
        t.diagnostic(
          `${label}: ${a.calls.length} module calls, ${m.layers().length} layers, ${missing.length} modules folded away`,
        );
      } finally {
        await m.release();
      }
    });

    test(`${label}: pooled activations equal the forward hooks for every layer`, async (t) => {
      const input = await readNpy(join(DIR, 'input.npy'));
      const m = await createOnnxTargetModel(join(DIR, file));
      try {
        const layers = m.layers().filter((l) => hookModule(l.name, file) !== null);
        for (const pool of ['avg', 'max'] as const) {
          const acts = await m.activations(
            input.data as Float32Array,
            input.shape[0],
            layers.map((l) => l.name),
            pool,
          );
          let worst = 0;
          for (const l of layers) {
            const mod = hookModule(l.name, file)!;
            const p = l.kind === 'vector' ? 'none' : pool;
            const want = npyToMatrix(await readNpy(join(DIR, `${mod}_${p}.npy`)), mod);
            const err = relativeError(acts.get(l.name)!, want);
            worst = Math.max(worst, err);
            assert.ok(err <= 1e-4, `${l.name} (${mod}) ${pool}: ${err}`);
          }
          t.diagnostic(
            `${label} ${pool}: ${layers.length} layers, worst relative error ${worst.toExponential(2)}`,
          );
        }
      } finally {
        await m.release();
      }
    });
  }
});
