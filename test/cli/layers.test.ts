import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cli } from '../helpers/cli.js';

const MODELS = fileURLToPath(new URL('../../../test/fixtures/models/', import.meta.url));

describe('clip-dissect layers', () => {
  it('prints the module tree of a TorchScript export with tensors, shapes and neuron counts', async () => {
    const r = await cli(['layers', `${MODELS}resnet_small_ts.onnx`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /torchscript export, input 3×64×64/);
    assert.match(
      r.stdout,
      /^layer4 +spatial +64 +\[batch, 64, 2, 2\] +\/layer4\/layer4\.1\/relu_1\/Relu_output_0$/m,
    );
    assert.match(r.stdout, /^ {2}layer1\.0 +spatial +8 /m);
    assert.match(r.stdout, /^fc +vector +10 +\[batch, 10\]/m);
    // BatchNorm folded into conv1 by the default export
    assert.match(r.stdout, /warning: .*conv1.*/);
  });
  it('names the runtime on stderr only when it is the WebAssembly one or --runtime asked for it', async () => {
    // onnxruntime-node is installed here (a devDependency): auto takes it and says nothing
    const auto = await cli(['layers', `${MODELS}resnet_small_ts.onnx`]);
    assert.equal(auto.code, 0, auto.stderr);
    assert.doesNotMatch(auto.stderr, /^runtime:/m);
    const asked = await cli(['layers', `${MODELS}resnet_small_ts.onnx`, '--runtime', 'native']);
    assert.equal(asked.code, 0, asked.stderr);
    assert.match(asked.stderr, /^runtime: native \(onnxruntime-node 1\.31\.1; /m);
  });
  it('gives JSON for machines, for the dynamo exporter too', async () => {
    const r = await cli(['layers', '--json', `${MODELS}resnet_small_dynamo.onnx`]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.exporter, 'dynamo');
    const l4 = j.layers.find((l: { name: string }) => l.name === 'layer4');
    assert.equal(l4.neurons, 64);
    assert.equal(l4.kind, 'spatial');
  });
  it('reports a missing file with exit code 1 and a wrong usage with 2', async () => {
    const r = await cli(['layers', `${MODELS}nope.onnx`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nope\.onnx/);
    const r2 = await cli(['layers']);
    assert.equal(r2.code, 2);
    assert.match(
      r2.stderr,
      /layers: expected one ONNX model file, folder or hub id \(--target MODEL\) but got 0/,
    );
  });
});
