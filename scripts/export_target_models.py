#!/usr/bin/env python3
"""Small ONNX target networks and PyTorch golden activations for src/models/ (a dev tool; the tests never run Python).

    python3 scripts/export_target_models.py                  # (re)writes test/fixtures/models/
    python3 scripts/export_target_models.py --verify-full DIR  # full-size torchvision resnet18 (random weights)
                                                             # exported with both exporters into DIR (not committed)
    python3 scripts/export_target_models.py --resnet50 DIR     # full-size torchvision resnet50 (random weights),
                                                             # TorchScript export DIR/resnet50.onnx, for benchmarks
    python3 scripts/export_target_models.py --nan-tiny        # only test/fixtures/models/nan_tiny_ts.onnx

Every model has RANDOM weights (torch.manual_seed(0)); BatchNorm running statistics and affine parameters are
randomised too, so that folding a BatchNorm into its Conv changes the Conv's output. Each model is exported with
the TorchScript exporter (dynamo=False) and/or the dynamo exporter (dynamo=True), with a dynamic batch axis.
Golden activations come from PyTorch forward hooks that pool in the hook (the official CLIP-Dissect way):
4-D outputs -> mean / amax over H, W (over axes 1, 2 for the NHWC model), 3-D token outputs -> token 0 ("cls") /
mean over tokens, 2-D outputs as they are. Written with np.save as float32.
"""

import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn

import _torchvision_compat  # noqa: F401  (before torchvision / transformers)
from torchvision.models.resnet import BasicBlock, ResNet, resnet18, resnet50
from torchvision.models.vision_transformer import VisionTransformer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'models')


class SmallResNet(ResNet):
    """torchvision's ResNet (same module names and forward: conv1, bn1, relu, maxpool, layer1..layer4 of
    BasicBlocks, avgpool, fc) with narrow widths, so that the fixture stays small."""

    def __init__(self, widths=(8, 16, 32, 64), layers=(2, 2, 2, 2), num_classes=10):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = widths[0]
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(BasicBlock, widths[0], layers[0])
        self.layer2 = self._make_layer(BasicBlock, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(BasicBlock, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(BasicBlock, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], num_classes)


class SeqFirstTiny(nn.Module):
    """Tokens laid out sequence-first, [T, B, C] (like nn.MultiheadAttention without batch_first)."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 16, kernel_size=8, stride=8)
        self.cls = nn.Parameter(torch.randn(1, 1, 16))
        self.block = nn.Sequential(nn.Linear(16, 24), nn.GELU())
        self.norm = nn.LayerNorm(24)
        self.head = nn.Linear(24, 5)

    def forward(self, x):
        t = self.patch(x).flatten(2).permute(2, 0, 1)  # [T, B, C]
        t = torch.cat([self.cls.expand(1, t.shape[1], -1), t], 0)
        t = self.norm(self.block(t))
        return self.head(t[0])


class ConvNHWC(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2)

    def forward(self, x):  # NHWC in, NHWC out
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class NhwcTiny(nn.Module):
    """Channels-last image input and channels-last activations ([N, H, W, C]), like a model converted from TF."""

    def __init__(self):
        super().__init__()
        self.stem = ConvNHWC(3, 6, 3)
        self.act = nn.ReLU()
        self.mix = ConvNHWC(6, 4, 1)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        y = self.mix(self.act(self.stem(x)))
        return self.head(y.mean((1, 2)))


def randomise_batchnorm(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) * 1.5 + 0.25)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)


def build_resnet_small():
    torch.manual_seed(0)
    model = SmallResNet()
    randomise_batchnorm(model, torch.Generator().manual_seed(1))
    return model.eval()


def build_vit_tiny():
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                              num_classes=10)
    with torch.no_grad():  # torchvision zero-initialises the head and class token; make them informative
        model.heads.head.weight.normal_(0, 0.2)
        model.heads.head.bias.normal_(0, 0.2)
        model.class_token.normal_(0, 1)
    return model.eval()


def build_seqfirst_tiny():
    torch.manual_seed(0)
    return SeqFirstTiny().eval()


def build_nhwc_tiny():
    torch.manual_seed(0)
    return NhwcTiny().eval()


def export(model, x, path, dynamo, **kw):
    args = dict(input_names=['input'], output_names=['logits'])
    if dynamo:
        args['dynamic_shapes'] = ({0: torch.export.Dim('batch', min=1, max=4096)},)
        args['external_data'] = kw.pop('external_data', False)
    else:
        args['dynamic_axes'] = {'input': {0: 'batch'}, 'logits': {0: 'batch'}}
    args.update(kw)
    torch.onnx.export(model, (x,), path, dynamo=dynamo, **args)


def golden(model, x, modules, layout='nchw'):
    """{module: {pool: array}} from forward hooks (pooled inside the hook, before any in-place op)."""
    named = dict(model.named_modules())
    out = {}
    handles = []

    def hook_for(name):
        def hook(_m, _inp, output):
            t = output[0] if isinstance(output, tuple) else output
            t = t.detach()
            if t.dim() == 4:
                axes = (1, 2) if layout == 'nhwc' else (2, 3)
                out[name] = {'avg': t.mean(axes), 'max': t.amax(axes)}
            elif t.dim() == 3:
                if layout == 'seqfirst':
                    out[name] = {'cls': t[0], 'mean': t.mean(0)}
                else:
                    out[name] = {'cls': t[:, 0], 'mean': t.mean(1)}
            elif t.dim() == 2:
                out[name] = {'none': t.clone()}
            else:
                raise ValueError(f'{name}: unexpected rank {t.dim()}')
        return hook

    for name in modules:
        handles.append(named[name].register_forward_hook(hook_for(name)))
    with torch.no_grad():
        logits = model(x)
    for h in handles:
        h.remove()
    return out, logits


def save(name, t):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32)))


def write_case(prefix, model, x_torch, x_nchw, modules, layout='nchw'):
    acts, logits = golden(model, x_torch, modules, layout)
    save(f'{prefix}_input.npy', x_nchw)
    save(f'{prefix}_logits.npy', logits)
    summary = {}
    for name, pools in acts.items():
        for pool, t in pools.items():
            save(f'{prefix}_{name}_{pool}.npy', t)
        summary[name] = {'pools': sorted(pools), 'neurons': int(next(iter(pools.values())).shape[1])}
    return summary


def make_fixtures():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(('.onnx', '.data', '.npy', '.json')):
            os.remove(os.path.join(OUT, f))
    gen = torch.Generator().manual_seed(1234)
    cases = {}

    resnet = build_resnet_small()
    x = torch.randn(3, 3, 64, 64, generator=gen)
    export(resnet, x, os.path.join(OUT, 'resnet_small_ts.onnx'), dynamo=False)
    export(resnet, x, os.path.join(OUT, 'resnet_small_ts_nofold.onnx'), dynamo=False, do_constant_folding=False)
    export(resnet, x, os.path.join(OUT, 'resnet_small_dynamo.onnx'), dynamo=True, external_data=True)
    cases['resnet_small'] = write_case('resnet_small', resnet, x, x,
                                       ['conv1', 'bn1', 'layer1', 'layer2', 'layer3', 'layer4', 'layer4.1', 'fc'])

    vit = build_vit_tiny()
    x = torch.randn(3, 3, 32, 32, generator=gen)
    export(vit, x, os.path.join(OUT, 'vit_tiny_ts.onnx'), dynamo=False)
    export(vit, x, os.path.join(OUT, 'vit_tiny_dynamo.onnx'), dynamo=True, external_data=False)
    cases['vit_tiny'] = write_case('vit_tiny', vit, x, x, [
        'conv_proj', 'encoder', 'encoder.layers.encoder_layer_1', 'encoder.layers.encoder_layer_0.mlp',
        'encoder.layers.encoder_layer_0.self_attention', 'heads'])

    seq = build_seqfirst_tiny()
    x = torch.randn(3, 3, 32, 32, generator=gen)
    export(seq, x, os.path.join(OUT, 'seqfirst_tiny_ts.onnx'), dynamo=False)
    cases['seqfirst_tiny'] = write_case('seqfirst_tiny', seq, x, x, ['patch', 'block', 'norm', 'head'],
                                        layout='seqfirst')

    nhwc = build_nhwc_tiny()
    x_nchw = torch.randn(3, 3, 16, 16, generator=gen)
    x = x_nchw.permute(0, 2, 3, 1).contiguous()
    export(nhwc, x, os.path.join(OUT, 'nhwc_tiny_ts.onnx'), dynamo=False)
    cases['nhwc_tiny'] = write_case('nhwc_tiny', nhwc, x, x_nchw, ['stem', 'act', 'mix', 'head'], layout='nhwc')

    with open(os.path.join(OUT, 'cases.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'cases': cases}, f, indent=1, sort_keys=True)
        f.write('\n')
    check_with_onnxruntime()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f'wrote {len(os.listdir(OUT))} files, {total / 1e6:.2f} MB, to {OUT}')
    if total > 6e6:
        raise SystemExit('fixtures exceed 6 MB')


def check_with_onnxruntime():
    """Each export's logits match PyTorch's (so the files are right before any TS code reads them)."""
    import onnxruntime as ort
    for model, case in [('resnet_small_ts', 'resnet_small'), ('resnet_small_ts_nofold', 'resnet_small'),
                        ('resnet_small_dynamo', 'resnet_small'), ('vit_tiny_ts', 'vit_tiny'),
                        ('vit_tiny_dynamo', 'vit_tiny'), ('seqfirst_tiny_ts', 'seqfirst_tiny'),
                        ('nhwc_tiny_ts', 'nhwc_tiny')]:
        x = np.load(os.path.join(OUT, f'{case}_input.npy'))
        if case == 'nhwc_tiny':
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        want = np.load(os.path.join(OUT, f'{case}_logits.npy'))
        sess = ort.InferenceSession(os.path.join(OUT, f'{model}.onnx'), providers=['CPUExecutionProvider'])
        got = sess.run(None, {'input': x})[0]
        err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-6)
        if err > 1e-4:
            raise SystemExit(f'{model}: onnxruntime logits differ from torch (relative {err:.2e})')
        got1 = sess.run(None, {'input': x[:1]})[0]  # the batch axis is dynamic
        if np.abs(got1 - want[:1]).max() / max(np.abs(want).max(), 1e-6) > 1e-4:
            raise SystemExit(f'{model}: batch of 1 differs')


def verify_full(out_dir):
    """Full-size torchvision resnet18 (random weights) with both exporters plus hook golden values, in out_dir.
    test/models/full-resnet18.test.ts picks it up when CLIP_DISSECT_FULL_RESNET18=out_dir is set."""
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    model = resnet18()
    randomise_batchnorm(model, torch.Generator().manual_seed(1))
    model.eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(5))
    export(model, x, os.path.join(out_dir, 'resnet18_ts.onnx'), dynamo=False)
    export(model, x, os.path.join(out_dir, 'resnet18_ts_nofold.onnx'), dynamo=False, do_constant_folding=False)
    export(model, x, os.path.join(out_dir, 'resnet18_dynamo.onnx'), dynamo=True, external_data=True)
    modules = [n for n, _ in model.named_modules() if n]
    acts, logits = golden(model, x, modules)
    np.save(os.path.join(out_dir, 'input.npy'), x.numpy())
    for name, pools in acts.items():
        for pool, t in pools.items():
            np.save(os.path.join(out_dir, f'{name}_{pool}.npy'), t.numpy().astype(np.float32))
    with open(os.path.join(out_dir, 'modules.json'), 'w') as f:
        json.dump({'modules': modules}, f, indent=1)
    print(f'wrote resnet18 exports and golden activations of {len(acts)} modules to {out_dir}')


def export_resnet50(out_dir):
    """Full-size torchvision resnet50 with random weights (torch.manual_seed(0), BatchNorm statistics as initialised),
    TorchScript exporter, dynamic batch axis, 3x224x224 input: out_dir/resnet50.onnx (about 100 MB, never
    committed). bench/activations.ts times `clip-dissect activations` on it."""
    os.makedirs(out_dir, exist_ok=True)
    export_seeded(resnet50, 224, os.path.join(out_dir, 'resnet50.onnx'))


def export_seeded(build, size, path):
    """build() after torch.manual_seed(0), exported with the TorchScript exporter on a 2x3xSIZExSIZE input."""
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(5))
    export(model, x, path, dynamo=False)
    print(f'wrote {path} ({os.path.getsize(path) / 1e6:.3f} MB)')


class NanLayer(nn.Module):
    """sqrt(-x^2 - 1): NaN for every input, as a broken network's layer would give."""

    def forward(self, x):
        return torch.sqrt(-(x * x) - 1)


class NanTiny(nn.Module):
    """A conv layer with finite outputs ('conv1') and a layer whose outputs are all NaN ('bad')."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, stride=2)
        self.bad = NanLayer()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        y = self.conv1(x)
        return self.fc(self.bad(y).mean((2, 3)))


def export_nan_tiny():
    """test/fixtures/models/nan_tiny_ts.onnx: a target whose layer 'bad' outputs NaN (dissect must refuse it)."""
    export_seeded(NanTiny, 64, os.path.join(OUT, 'nan_tiny_ts.onnx'))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--verify-full', metavar='DIR', help='export full-size resnet18 into DIR instead')
    ap.add_argument('--resnet50', metavar='DIR', help='export full-size resnet50 (random weights) into DIR instead')
    ap.add_argument('--nan-tiny', action='store_true', help='write only the NaN-producing fixture nan_tiny_ts.onnx')
    args = ap.parse_args()
    if args.nan_tiny:
        export_nan_tiny()
    elif args.verify_full:
        verify_full(args.verify_full)
    elif args.resnet50:
        export_resnet50(args.resnet50)
    else:
        make_fixtures()


if __name__ == '__main__':
    main()
