#!/usr/bin/env python3
"""Tiny Hugging Face image classifiers in the transformers.js hub layout, for the hub-target tests (a dev tool;
the tests never run Python).

    python3 scripts/export_hf_target.py     # (re)writes test/fixtures/hf/{resnet-tiny,vit-tiny}/

Each model is transformers' own ResNetForImageClassification / ViTForImageClassification with a tiny config and
RANDOM weights (torch.manual_seed(0)), exported the way Optimum / transformers.js export them:
torch.onnx.export of the Hugging Face module (TorchScript exporter, dynamo=False), input `pixel_values`, output
`logits`, a dynamic batch axis, opset 17, into `onnx/model.onnx`. The ViT keeps its weights in external data
(`onnx/model.onnx_data`, transformers.js' name for it). Next to it: `config.json` (with id2label) and
`preprocessor_config.json` as the hub repositories have them (ResNet: ConvNextFeatureExtractor with crop_pct;
ViT: ViTFeatureExtractor with an int size = a square), and golden outputs computed by PyTorch:
`golden.json` holds, for a fixed input, the logits and the pooled output of the top-level blocks (forward hooks,
mean over H, W for 4-D outputs, token 0 for 3-D token outputs), as the official CLIP-Dissect code records them.
"""

import json
import os

import numpy as np
import onnx
import torch

import _torchvision_compat  # noqa: F401  (before torchvision / transformers)
from transformers import ResNetConfig, ResNetForImageClassification, ViTConfig, ViTForImageClassification

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'hf')
LABELS = ['tench', 'goldfish', 'great white shark', 'tiger shark', 'hammerhead']


def randomize_norms(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def export(model, name, size, preprocessor, hooks, external):
    model.eval()
    d = os.path.join(OUT, name)
    os.makedirs(os.path.join(d, 'onnx'), exist_ok=True)
    model.config.save_pretrained(d)
    with open(os.path.join(d, 'preprocessor_config.json'), 'w') as f:
        json.dump(preprocessor, f, indent=2)
        f.write('\n')
    x = torch.from_numpy(((np.arange(2 * 3 * size * size) * 7919 + 13) % 1000 / 250 - 2).astype(np.float32))
    x = x.reshape(2, 3, size, size)
    path = os.path.join(d, 'onnx', 'model.onnx')
    torch.onnx.export(
        model,
        (x,),
        path,
        input_names=['pixel_values'],
        output_names=['logits'],
        dynamic_axes={'pixel_values': {0: 'batch_size'}, 'logits': {0: 'batch_size'}},
        opset_version=17,
        do_constant_folding=True,
        dynamo=False,
    )
    if external:
        m = onnx.load(path)
        data = os.path.join(d, 'onnx', 'model.onnx_data')
        if os.path.exists(data):
            os.remove(data)  # onnx.save appends to an existing external data file
        onnx.save(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location='model.onnx_data',
                  size_threshold=0)
    golden = {'input': f'x[i] = f32(((i * 7919 + 13) % 1000) / 250 - 2), shape [2, 3, {size}, {size}]'}
    recorded = {}
    handles = []
    for layer in hooks:
        mod = model.get_submodule(layer)

        def hook(_m, _i, out, layer=layer):
            t = out[0] if isinstance(out, tuple) else out
            t = t.detach()
            recorded[layer] = t.mean(dim=(2, 3)) if t.dim() == 4 else t[:, 0] if t.dim() == 3 else t

        handles.append(mod.register_forward_hook(hook))
    with torch.no_grad():
        logits = model(pixel_values=x).logits
    for h in handles:
        h.remove()
    golden['logits'] = logits.tolist()
    golden['layers'] = {k: v.tolist() for k, v in recorded.items()}
    with open(os.path.join(d, 'golden.json'), 'w') as f:
        json.dump(golden, f)
        f.write('\n')


def main():
    torch.manual_seed(0)
    id2label = {i: n for i, n in enumerate(LABELS)}
    label2id = {n: i for i, n in enumerate(LABELS)}
    resnet = ResNetForImageClassification(
        ResNetConfig(
            embedding_size=8,
            hidden_sizes=[8, 16, 16, 32],
            depths=[1, 1, 1, 1],
            layer_type='basic',
            num_labels=len(LABELS),
            id2label=id2label,
            label2id=label2id,
        )
    )
    randomize_norms(resnet)
    export(
        resnet,
        'resnet-tiny',
        32,
        {
            'crop_pct': 0.875,
            'do_normalize': True,
            'do_resize': True,
            'feature_extractor_type': 'ConvNextFeatureExtractor',
            'image_mean': [0.485, 0.456, 0.406],
            'image_std': [0.229, 0.224, 0.225],
            'resample': 3,
            'size': 32,
        },
        ['resnet.embedder', 'resnet.encoder.stages.0', 'resnet.encoder.stages.1', 'resnet.encoder.stages.2',
         'resnet.encoder.stages.3'],
        external=False,
    )
    torch.manual_seed(0)
    vit = ViTForImageClassification(
        ViTConfig(
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            image_size=32,
            patch_size=8,
            num_labels=len(LABELS),
            id2label=id2label,
            label2id=label2id,
        )
    )
    export(
        vit,
        'vit-tiny',
        32,
        {
            'do_normalize': True,
            'do_resize': True,
            'feature_extractor_type': 'ViTFeatureExtractor',
            'image_mean': [0.5, 0.5, 0.5],
            'image_std': [0.5, 0.5, 0.5],
            'resample': 2,
            'size': 32,
        },
        ['vit.embeddings', 'vit.layers.0', 'vit.layers.1', 'vit.layernorm'],
        external=True,
    )


if __name__ == '__main__':
    main()
