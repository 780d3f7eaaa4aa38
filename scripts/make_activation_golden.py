#!/usr/bin/env python3
"""End-to-end golden activations for src/pipeline/activations.ts (a dev tool; the tests never run Python).

    python3 scripts/make_activation_golden.py      # (re)writes test/fixtures/activations/

Rebuilds the small ResNet of test/fixtures/models/resnet_small_*.onnx (scripts/export_target_models.py's builder and
seed, checked against the stored logits), runs it in PyTorch over the fixture images of test/fixtures/images/ that
sharp decodes like PIL (the `images` of expected.json: every PNG and JPEG there), in the order torchvision's
ImageFolder gives a flat folder (file names sorted by code point), with

    Resize(72, bilinear), CenterCrop(64), ToTensor(), Normalize(ImageNet mean, std)

on `Image.open(p).convert('RGB')`, and pools module outputs in forward hooks as the official CLIP-Dissect
`utils.get_activation` does: 4-D outputs -> mean ('avg') / amax ('max') over dims [2, 3], 2-D outputs as they are.
Writes, under test/fixtures/activations/:

* `<module>_<pool>.npy`: N x K float32 for conv1, bn1, layer1..layer4 (avg, max) and fc ('none');
* `images.txt`: the image file names, one a line, in row order;
* `preprocess.json`: the preprocessing above as a clip-dissect PreprocessConfig;
* `golden.json`: modules, pools, neuron counts, image sizes and the versions used.
"""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# imports torchvision (working around a torchvision wheel built for another torch) and the model builder
import export_target_models as etm  # noqa: E402
import PIL  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402

try:
    from torchvision import transforms as T  # noqa: E402
except RuntimeError:
    # same workaround as make_image_fixtures.py: skip the fake-op registration of torchvision's C++ operators
    import torch.library

    _register_fake = torch.library.register_fake

    def _tolerant(name, *args, **kwargs):
        if isinstance(name, str) and name.startswith('torchvision::'):
            return lambda f: f
        return _register_fake(name, *args, **kwargs)

    torch.library.register_fake = _tolerant
    for k in [k for k in sys.modules if k.startswith('torchvision')]:
        del sys.modules[k]
    from torchvision import transforms as T  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.path.join(ROOT, 'test', 'fixtures', 'images')
MODELS = os.path.join(ROOT, 'test', 'fixtures', 'models')
OUT = os.path.join(ROOT, 'test', 'fixtures', 'activations')

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
PREPROCESS = {'resize': 72, 'crop': 64, 'interpolation': 'bilinear', 'mean': MEAN, 'std': STD}
MODULES = ['conv1', 'bn1', 'layer1', 'layer2', 'layer3', 'layer4', 'fc']


def image_names():
    with open(os.path.join(IMAGES, 'expected.json')) as f:
        names = list(json.load(f)['images'])
    return sorted(names)  # Python sorts by code point, as ImageFolder / clip-dissect's flat folders do


def main():
    model = etm.build_resnet_small()
    # the same network as the ONNX fixtures: their stored PyTorch logits must come out again
    x = torch.from_numpy(np.load(os.path.join(MODELS, 'resnet_small_input.npy')))
    want = np.load(os.path.join(MODELS, 'resnet_small_logits.npy'))
    with torch.no_grad():
        got = model(x).numpy()
    if not np.array_equal(got, want):
        raise SystemExit(f'rebuilt model differs from the fixture (max |diff| {np.abs(got - want).max():.3g})')

    transform = T.Compose([
        T.Resize(PREPROCESS['resize'], interpolation=T.InterpolationMode.BILINEAR),
        T.CenterCrop(PREPROCESS['crop']),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ])
    names = image_names()
    sizes = {}
    tensors = []
    for n in names:
        with Image.open(os.path.join(IMAGES, n)) as im:
            sizes[n] = list(im.size)
            tensors.append(transform(im.convert('RGB')))
    batch = torch.stack(tensors)

    acts = {}
    named = dict(model.named_modules())

    def hook_for(name):
        def hook(_m, _inp, output):
            t = output.detach()
            if t.dim() == 4:  # utils.get_activation: mean / amax over dims [2, 3]
                acts[name] = {'avg': t.mean(dim=[2, 3]), 'max': t.amax(dim=[2, 3])}
            elif t.dim() == 2:
                acts[name] = {'none': t.clone()}
            else:
                raise ValueError(f'{name}: rank {t.dim()}')
        return hook

    handles = [named[m].register_forward_hook(hook_for(m)) for m in MODULES]
    with torch.no_grad():
        model(batch)
    for h in handles:
        h.remove()

    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    summary = {}
    for m in MODULES:
        for pool, t in acts[m].items():
            np.save(os.path.join(OUT, f'{m}_{pool}.npy'), np.ascontiguousarray(t.numpy().astype(np.float32)))
        summary[m] = {'pools': sorted(acts[m]), 'neurons': int(next(iter(acts[m].values())).shape[1])}
    with open(os.path.join(OUT, 'images.txt'), 'w') as f:
        f.write(''.join(f'{n}\n' for n in names))
    with open(os.path.join(OUT, 'preprocess.json'), 'w') as f:
        json.dump(PREPROCESS, f, indent=1)
        f.write('\n')
    with open(os.path.join(OUT, 'golden.json'), 'w') as f:
        json.dump({
            'script': 'scripts/make_activation_golden.py',
            'model': 'test/fixtures/models/resnet_small_*.onnx (export_target_models.build_resnet_small)',
            'images': len(names),
            'sizes': sizes,
            'modules': summary,
            'torch': torch.__version__,
            'torchvision': torchvision.__version__,
            'pillow': PIL.__version__,
            'numpy': np.__version__,
        }, f, indent=1, sort_keys=True)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f'wrote {len(os.listdir(OUT))} files, {total / 1e3:.0f} KB, to {OUT} ({len(names)} images)')
    if total > 200e3:
        raise SystemExit('golden activations exceed 200 KB')


if __name__ == '__main__':
    main()
