import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveLayers, topLevelBlocks } from '../../src/models/target-model.js';
import { ArgumentError } from '../../src/numeric/errors.js';

const AVAILABLE = [
  'conv1',
  'layer1',
  'layer2',
  'layer3',
  'layer4',
  'layer4.1',
  'layer4.1.relu',
  'avgpool',
  'fc',
];

describe('resolveLayers', () => {
  test('a comma-separated string, trimmed, empty entries and duplicates dropped, order kept', () => {
    assert.deepEqual(resolveLayers(' layer4, fc,,layer1 ,layer4', AVAILABLE), ['layer4', 'fc', 'layer1']);
  });

  test('an array of names', () => {
    assert.deepEqual(resolveLayers(['fc', 'conv1'], AVAILABLE), ['fc', 'conv1']);
  });

  test('a predicate selects in the order of the available names', () => {
    assert.deepEqual(
      resolveLayers((n) => n.startsWith('layer4'), AVAILABLE),
      ['layer4', 'layer4.1', 'layer4.1.relu'],
    );
  });

  test('a predicate that selects nothing is an error listing the names', () => {
    assert.throws(
      () => resolveLayers(() => false, AVAILABLE),
      (e: unknown) => e instanceof ArgumentError && /selects none of the 9 available layers/.test(e.message),
    );
  });

  test('an empty selection is an error', () => {
    assert.throws(() => resolveLayers(' , ', AVAILABLE), /no layer selected/);
    assert.throws(() => resolveLayers([], AVAILABLE), /no layer selected/);
  });

  test('an unknown name lists every available name, closest first', () => {
    assert.throws(
      () => resolveLayers('layer4,layr3', AVAILABLE),
      (e: unknown) => {
        assert.ok(e instanceof ArgumentError);
        assert.equal(e.code, 'ERR_ARGUMENT');
        assert.match(e.message, /^unknown layer 'layr3'; closest layers first: 'layer3', /);
        for (const n of AVAILABLE) assert.ok(e.message.includes(`'${n}'`), n);
        return true;
      },
    );
  });

  test('isAlsoValid admits other names (raw tensor names) and hint explains a missing one', () => {
    const opts = {
      isAlsoValid: (n: string) => n.startsWith('/'),
      hint: (n: string) => (n === 'bn1' ? 'folded into conv1 at export' : undefined),
    };
    assert.deepEqual(resolveLayers('/layer1/Relu_output_0,fc', AVAILABLE, opts), [
      '/layer1/Relu_output_0',
      'fc',
    ]);
    assert.throws(
      () => resolveLayers('bn1', AVAILABLE, opts),
      /unknown layer 'bn1' \(folded into conv1 at export\)/,
    );
  });

  test('long lists are cut after 30 names', () => {
    const many = Array.from({ length: 50 }, (_, i) => `block.${i}`);
    assert.throws(() => resolveLayers('block.x', many), /… and 20 more/);
  });

  test('a model without named layers says so', () => {
    assert.throws(() => resolveLayers('fc', []), /this model has no named layers/);
  });

  test('non-string selections are rejected', () => {
    assert.throws(() => resolveLayers(3 as unknown as string, AVAILABLE), /comma-separated string/);
    assert.throws(() => resolveLayers([3] as unknown as string[], AVAILABLE), /must be strings/);
  });
});

describe('topLevelBlocks (dissect’s default layers)', () => {
  const spatial = (names: string) => names.split(' ').map((name) => ({ name, kind: 'spatial' as const }));
  test('torchvision ResNet: the stem conv and layer1…layer4', () => {
    const tree = spatial(
      'conv1 relu maxpool layer1 layer1.0 layer1.0.conv1 layer1.1 layer2 layer2.0 layer2.0.conv1 layer2.1 ' +
        'layer3 layer3.0 layer3.1 layer4 layer4.0 layer4.1 avgpool',
    );
    assert.deepEqual(topLevelBlocks([...tree, { name: 'fc', kind: 'vector' }]), [
      'conv1',
      'layer1',
      'layer2',
      'layer3',
      'layer4',
    ]);
  });
  test('into the backbone: transformers 4 ViT and torchvision ViT', () => {
    const layer = (p: string, i: number) => `${p}.${i} ${p}.${i}.attention ${p}.${i}.output`;
    const hf = spatial(
      `vit vit.embeddings vit.embeddings.patch_embeddings vit.encoder ${[0, 1, 2].map((i) => layer('vit.encoder.layer', i)).join(' ')} vit.layernorm`,
    );
    assert.deepEqual(topLevelBlocks([...hf, { name: 'classifier', kind: 'vector' }]), [
      'vit.encoder.layer.0',
      'vit.encoder.layer.1',
      'vit.encoder.layer.2',
    ]);
    const tv = spatial(
      `conv_proj encoder ${[0, 1, 2].map((i) => `encoder.layers.encoder_layer_${i} encoder.layers.encoder_layer_${i}.mlp`).join(' ')} encoder.ln`,
    );
    assert.deepEqual(topLevelBlocks([...tv, { name: 'heads', kind: 'vector' }]), [
      'encoder.layers.encoder_layer_0',
      'encoder.layers.encoder_layer_1',
      'encoder.layers.encoder_layer_2',
    ]);
  });
  test('no numbered blocks: the containers, else every module; unsupported ones never', () => {
    assert.deepEqual(topLevelBlocks(spatial('stem stem.conv body body.conv head')), ['stem', 'body']);
    assert.deepEqual(topLevelBlocks(spatial('a b c')), ['a', 'b', 'c']);
    assert.deepEqual(topLevelBlocks([{ name: 'x', kind: 'unsupported' }]), []);
  });
});
