import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  analyseModules,
  type GraphNode,
  type GraphView,
  nodeScopes,
  parsePythonStringList,
  torchScriptScopes,
} from '../../src/models/_module-tree.js';

describe('TorchScript scope names', () => {
  test('segments become full module paths', () => {
    assert.deepEqual(torchScriptScopes('/layer4/layer4.2/relu_2/Relu'), [
      'layer4',
      'layer4.2',
      'layer4.2.relu_2',
    ]);
    assert.deepEqual(torchScriptScopes('/features/features.43/MaxPool'), ['features', 'features.43']);
    assert.deepEqual(torchScriptScopes('/features.43/MaxPool'), ['features.43']);
    assert.deepEqual(torchScriptScopes('/Flatten'), []);
    assert.deepEqual(torchScriptScopes('/blocks/blocks.0/blocks.0.1/Add'), [
      'blocks',
      'blocks.0',
      'blocks.0.1',
    ]);
  });

  test('Hugging Face exports: ModuleList children appear without their (uncalled) list', () => {
    assert.deepEqual(torchScriptScopes('/resnet/encoder/stages.3/layers.1/Add'), [
      'resnet',
      'resnet.encoder',
      'resnet.encoder.stages.3',
      'resnet.encoder.stages.3.layers.1',
    ]);
    assert.deepEqual(torchScriptScopes('/encoder/layers/encoder_layer_11/ln_1/LayerNormalization'), [
      'encoder',
      'encoder.layers',
      'encoder.layers.encoder_layer_11',
      'encoder.layers.encoder_layer_11.ln_1',
    ]);
  });
});

describe('dynamo name_scopes metadata', () => {
  test('Python list literals', () => {
    assert.deepEqual(parsePythonStringList("['', 'layer1', 'layer1.0', 'relu_1']"), [
      '',
      'layer1',
      'layer1.0',
      'relu_1',
    ]);
    assert.deepEqual(parsePythonStringList(`["it's", 'a\\'b', 'c\\\\d']`), ["it's", "a'b", 'c\\d']);
    assert.deepEqual(parsePythonStringList('[]'), []);
    assert.deepEqual(parsePythonStringList("['a',]"), ['a']);
    assert.equal(parsePythonStringList("['a'"), null);
    assert.equal(parsePythonStringList('layer1'), null);
  });

  test('the root and the op are dropped; a stack without the root has no modules', () => {
    const meta = (v: string) => ({
      name: 'node_relu_1',
      metadata: new Map([['pkg.torch.onnx.name_scopes', v]]),
    });
    assert.deepEqual(nodeScopes(meta("['', 'layer1', 'layer1.0', 'layer1.0.relu', 'relu_1']")), {
      scopes: ['layer1', 'layer1.0', 'layer1.0.relu'],
      exporter: 'dynamo',
    });
    assert.deepEqual(nodeScopes(meta("['', 'add_3']")), { scopes: [], exporter: 'dynamo' });
    assert.deepEqual(nodeScopes(meta("['_empty_nn_module_stack_from_metadata_hook', 'sym_size_int_1']")), {
      scopes: [],
      exporter: 'dynamo',
    });
    assert.deepEqual(nodeScopes({ name: 'Conv_0', metadata: new Map() }), {
      scopes: [],
      exporter: 'unknown',
    });
  });
});

function node(
  name: string,
  opType: string,
  inputs: string[],
  outputs: string[],
  scopes?: string[],
): GraphNode {
  const metadata = new Map<string, string>();
  if (scopes)
    metadata.set('pkg.torch.onnx.name_scopes', `[${['', ...scopes, name].map((s) => `'${s}'`).join(', ')}]`);
  return { name, opType, domain: '', inputs, outputs, implicitInputs: [], metadata };
}

function view(nodes: GraphNode[], initializers: string[] = []): GraphView {
  return {
    nodes,
    inputs: ['x'],
    outputs: [nodes[nodes.length - 1].outputs[0]],
    initializers: new Set(initializers),
  };
}

describe('analyseModules', () => {
  test('the output is the data tensor made inside and read outside; constants and inner tensors do not count', () => {
    const g = view(
      [
        node('/conv1/Constant', 'Constant', [], ['/conv1/Constant_output_0']),
        node('/conv1/Conv', 'Conv', ['x', 'w'], ['/conv1/Conv_output_0']),
        node('/conv1/Relu', 'Relu', ['/conv1/Conv_output_0'], ['/conv1/Relu_output_0']),
        node(
          '/Reshape',
          'Reshape',
          ['/conv1/Relu_output_0', '/conv1/Constant_output_0'],
          ['/Reshape_output_0'],
        ),
        node('/fc/Gemm', 'Gemm', ['/Reshape_output_0', 'fc.weight'], ['logits']),
      ],
      ['w', 'fc.weight'],
    );
    const a = analyseModules(g);
    assert.equal(a.exporter, 'torchscript');
    assert.deepEqual(a.modules, ['conv1', 'fc']);
    assert.deepEqual(
      a.calls.map((c) => [c.module, c.call, c.outputs]),
      [
        ['conv1', 0, ['/conv1/Relu_output_0']],
        ['fc', 0, ['logits']],
      ],
    );
  });

  test('tensors built from the input shape only (a mask shared by later layers) are not outputs', () => {
    const g = view([
      node('node_shape', 'Shape', ['x'], ['shape'], ['layers.0', 'layers.0.attn']),
      node('node_mask', 'ConstantOfShape', ['shape'], ['mask'], ['layers.0', 'layers.0.attn']),
      node('node_attn', 'Add', ['x', 'mask'], ['attn'], ['layers.0', 'layers.0.attn']),
      node('node_attn_1', 'Add', ['attn', 'mask'], ['attn_1'], ['layers.1', 'layers.1.attn']),
    ]);
    const a = analyseModules(g);
    assert.deepEqual(
      a.calls.map((c) => [c.module, c.outputs]),
      [
        ['layers.0', ['attn']],
        ['layers.0.attn', ['attn']],
        ['layers.1', ['attn_1']],
        ['layers.1.attn', ['attn_1']],
      ],
    );
    assert.ok(!a.dynamic.has('mask'));
  });

  test('dynamo: two calls of one shared module become two calls, in graph order', () => {
    const g = view([
      node('node_relu', 'Relu', ['x'], ['relu'], ['block', 'block.relu']),
      node('node_conv', 'Conv', ['relu', 'block.conv.weight'], ['conv'], ['block', 'block.conv']),
      node('node_add', 'Add', ['conv', 'x'], ['add'], ['block']),
      node('node_relu_1', 'Relu', ['add'], ['relu_1'], ['block', 'block.relu']),
      node('node_out', 'Identity', ['relu_1'], ['out']),
    ]);
    const a = analyseModules(g);
    assert.equal(a.exporter, 'dynamo');
    assert.deepEqual(
      a.calls.map((c) => [c.module, c.call, c.outputs]),
      [
        ['block', 0, ['relu_1']],
        ['block.relu', 0, ['relu']],
        ['block.conv', 0, ['conv']],
        ['block.relu', 1, ['relu_1']],
      ],
    );
  });

  test('dynamo: a conv fused into its BatchNorm is reported with both names', () => {
    const fused = node('node_Conv_1', 'Conv', ['x', 'conv1.weight', 'b'], ['getitem'], ['bn1']);
    (fused.metadata as Map<string, string>).set(
      'pkg.onnxscript.rewriter.rule_name',
      'RemoveOptionalBiasFromConv, FuseBatchNormIntoConv',
    );
    const a = analyseModules(view([fused], ['conv1.weight', 'b']));
    assert.deepEqual(a.folded, [{ conv: 'conv1', bn: 'bn1', exporter: 'dynamo' }]);
  });

  test('TorchScript: a conv whose weight is an anonymous folded constant is reported', () => {
    const folded = view(
      [
        node('/conv1/Conv', 'Conv', ['x', 'onnx::Conv_193', 'onnx::Conv_194'], ['a']),
        node('/conv2/Conv', 'Conv', ['a', 'conv2.weight'], ['b']),
      ],
      ['onnx::Conv_193', 'onnx::Conv_194', 'conv2.weight'],
    );
    assert.deepEqual(analyseModules(folded).folded, [
      { conv: 'conv1', bn: undefined, exporter: 'torchscript' },
    ]);
  });

  test('tensors read by a subgraph (If branch) count as consumed outside', () => {
    const g: GraphView = {
      nodes: [
        node('/enc/Relu', 'Relu', ['x'], ['/enc/Relu_output_0']),
        node('/enc/Neg', 'Neg', ['/enc/Relu_output_0'], ['/enc/Neg_output_0']),
        {
          ...node('/If', 'If', ['cond'], ['out']),
          implicitInputs: ['/enc/Relu_output_0', '/enc/Neg_output_0'],
        },
      ],
      inputs: ['x', 'cond'],
      outputs: ['out'],
      initializers: new Set(),
    };
    assert.deepEqual(analyseModules(g).calls[0].outputs, ['/enc/Relu_output_0', '/enc/Neg_output_0']);
  });
});
