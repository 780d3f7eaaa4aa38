#!/usr/bin/env python3
"""Checks src/data/preprocess.ts' reading of Hugging Face preprocessor configs (ConvNeXt's crop_pct, which the
Hugging Face ResNets use, and ViT's int size) against transformers' PIL image processors, pixel for pixel, on
the fixture images (a dev tool; needs a build: npx tsc -p tsconfig.json).

    python3 scripts/parity_hf_preprocess.py     # prints the largest difference per config and image; 0 expected

transformers 5's default processors resize with torchvision tensors (`ConvNextImageProcessor`), which differ
from PIL by a pixel level here and there; the reference is the PIL one (`ConvNextImageProcessorPil`, the
processor of transformers 4 and of the models' original pipelines), as for CLIP.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import _torchvision_compat  # noqa: F401  (before transformers)
from PIL import Image
from transformers import ConvNextImageProcessorPil, ViTImageProcessorPil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = ['rgb420.jpg', 'wide300x20.png', 'rgb_odd.png', 'tall10x1100.png', 'icc_rgb.png']
NODE = """
const [cfgPath, img, out] = process.argv.slice(1);
const fs = await import('node:fs');
const { decodeImageRGB } = await import(process.env.ROOT + '/dist/src/data/decode.js');
const { preprocessImage, preprocessorConfigFromHF } = await import(process.env.ROOT + '/dist/src/data/preprocess.js');
const cfg = preprocessorConfigFromHF(JSON.parse(fs.readFileSync(cfgPath, 'utf8')), cfgPath, 'floor');
fs.writeFileSync(out, Buffer.from(preprocessImage(await decodeImageRGB(img), cfg).buffer));
"""
CONFIGS = {
    'Xenova/resnet-50 (ConvNeXt, crop_pct 0.875)': {
        'crop_pct': 0.875, 'do_normalize': True, 'do_resize': True,
        'feature_extractor_type': 'ConvNextFeatureExtractor', 'image_mean': [0.485, 0.456, 0.406],
        'image_std': [0.229, 0.224, 0.225], 'resample': 3, 'size': 224,
    },
    'Xenova/vit-base-patch16-224 (ViT, int size)': {
        'do_normalize': True, 'do_resize': True, 'feature_extractor_type': 'ViTFeatureExtractor',
        'image_mean': [0.5, 0.5, 0.5], 'image_std': [0.5, 0.5, 0.5], 'resample': 2, 'size': 224,
    },
}
for name in ['resnet-tiny', 'vit-tiny']:
    with open(os.path.join(ROOT, 'test', 'fixtures', 'hf', name, 'preprocessor_config.json')) as f:
        CONFIGS[f'test/fixtures/hf/{name}'] = json.load(f)


def main():
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in CONFIGS.items():
            cfg_path = os.path.join(tmp, 'cfg.json')
            with open(cfg_path, 'w') as f:
                json.dump(cfg, f)
            cls = ConvNextImageProcessorPil if 'ConvNext' in cfg['feature_extractor_type'] else ViTImageProcessorPil
            proc = cls(**{k: v for k, v in cfg.items() if k != 'feature_extractor_type'})
            for img in IMAGES:
                path = os.path.join(ROOT, 'test', 'fixtures', 'images', img)
                ref = proc(Image.open(path).convert('RGB'), return_tensors='np')['pixel_values'][0]
                out = os.path.join(tmp, 'ours.bin')
                subprocess.run(['node', '--input-type=module', '-e', NODE, cfg_path, path, out], check=True,
                               env={**os.environ, 'ROOT': ROOT})
                ours = np.fromfile(out, dtype=np.float32).reshape(ref.shape)
                d = float(np.abs(ours - ref).max())
                worst = max(worst, d)
                print(f'{name}  {img}  {ref.shape}  max |ours - transformers| = {d:.3g}')
    print(f'worst: {worst:.3g}')
    sys.exit(0 if worst <= 1e-6 else 1)


if __name__ == '__main__':
    main()
