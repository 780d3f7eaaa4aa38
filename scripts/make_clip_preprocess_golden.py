#!/usr/bin/env python3
"""Golden CLIP input tensors for the crop semantics of `clip.load` (a dev tool; the tests never run Python).

    python3 scripts/make_clip_preprocess_golden.py     # (re)writes test/fixtures/clip-preprocess/

Writes small images whose resized overhang is odd (where torchvision's CenterCrop offset, Python's
`round((size - 224) / 2)` with halves to the even neighbour, and Hugging Face's `(size - 224) // 2` differ by
one pixel), in both orientations, one with an odd overhang where both agree, one with an even overhang, and
grayscale (L), palette (P), RGBA and 16-bit grayscale (I;16) PNGs; then `expected.json` with, per image:

* `openai`: the tensor of OpenAI's `clip.load(...)[1]` at 224 px, which is what the official CLIP-Dissect code
  feeds CLIP: torchvision `Compose([Resize(224, BICUBIC), CenterCrop(224), _convert_image_to_rgb, ToTensor(),
  Normalize(OpenAI mean, std)])` applied to `Image.open(p).convert('RGB')` (torchvision's ImageFolder
  `pil_loader`, which converts when the image is opened, before any transform);
* `hf`: transformers' PIL image processor for CLIP (`CLIPImageProcessorPil` in transformers 5, the
  `CLIPImageProcessor` of transformers 4 and of transformers.js) built from
  test/fixtures/clip/model/preprocessor_config.json, on the same RGB image (`pixel_values[0]`). (transformers
  5's default `CLIPImageProcessor` resizes torch tensors instead of PIL images: values up to 0.015 apart from
  both, one uint8 level; it is not what clip-dissect reproduces.)

Each tensor (3x224x224 float32, 600 KB, too big to commit a dozen of) is stored as the sha256 of its
little-endian float32 bytes, its float64 sum and 64 sampled (index, value) pairs; the `openai` ones also with
their border: rows 0, 1, 222, 223 and columns 0, 1, 222, 223 of each channel (float32, zlib + base64; the
pixels a one-pixel crop shift changes first). `offset` is the crop's [x, y] in the resized image. The `clip` package is not installed here:
its `_transform` is rebuilt from torchvision exactly as clip/clip.py writes it.
"""

import base64
import hashlib
import json
import os
import warnings
import zlib

import numpy as np
from PIL import Image, ImageFilter

import make_image_fixtures as mif  # torchvision imported with its fake-op registration made tolerant
from make_image_fixtures import T, scene, torch, torchvision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'clip-preprocess')
CLIP_PRE = os.path.join(ROOT, 'test', 'fixtures', 'clip', 'model', 'preprocessor_config.json')
N_PX = 224


def _convert_image_to_rgb(image):
    return image.convert('RGB')


def clip_transform(n_px):
    """clip/clip.py `_transform(n_px)`."""
    return T.Compose([
        T.Resize(n_px, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(n_px),
        _convert_image_to_rgb,
        T.ToTensor(),
        T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    ])


def f32b64(a):
    return base64.b64encode(zlib.compress(np.ascontiguousarray(a, dtype='<f4').tobytes(), 9)).decode('ascii')


def describe(t, seed, border=True):
    t = np.ascontiguousarray(t, dtype=np.float32)
    flat = t.reshape(-1)
    idx = np.sort(np.random.RandomState(seed).choice(flat.size, 64, replace=False))
    rows = t[:, [0, 1, N_PX - 2, N_PX - 1], :]  # 3 x 4 x 224
    cols = t[:, :, [0, 1, N_PX - 2, N_PX - 1]].transpose(0, 2, 1)  # 3 x 4 x 224
    d = {
        'shape': list(t.shape),
        'sha256': hashlib.sha256(t.astype('<f4').tobytes()).hexdigest(),
        'sum': float(flat.astype(np.float64).sum()),
        'samples': [[int(i), float(flat[i])] for i in idx],
    }
    if border:
        d['rows'] = f32b64(rows)
        d['cols'] = f32b64(cols)
    return d


def resized(w, h):
    """torchvision's Resize(224) output size (w, h)."""
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(N_PX * long / short)
    return (N_PX, new_long) if w <= h else (new_long, N_PX)


def picture(w, h, seed):
    """make_image_fixtures' scene with its noise smoothed (smaller files; edges and gradients stay)."""
    return scene(w, h, seed).filter(ImageFilter.GaussianBlur(1.5))


def make_images():
    """name -> PIL image to save; returns the file names."""
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    names = []

    def save(im, name, **kw):
        im.save(os.path.join(OUT, name), **kw)
        names.append(name)

    # RGB JPEGs: odd overhangs that the two roundings crop differently (107, 123, 111), both orientations
    save(picture(741, 500, 1), 'rgb_741x500.jpg', quality=80)
    save(picture(500, 741, 2), 'rgb_500x741.jpg', quality=80)
    save(picture(516, 333, 3), 'rgb_516x333.jpg', quality=80)
    save(picture(1024, 683, 4), 'rgb_1024x683.jpg', quality=75)
    # odd overhang 49: round(24.5) = 24 = 49 // 2; even overhang 74
    save(picture(400, 328, 5), 'rgb_400x328.jpg', quality=80)
    save(picture(480, 640, 6), 'rgb_480x640.jpg', quality=80)
    # grayscale L (overhang 59), palette P portrait (123), RGBA with varying alpha (67), 16-bit gray portrait (59)
    save(picture(384, 303, 7).convert('L'), 'gray_384x303.png')
    save(picture(333, 516, 8).quantize(colors=64, method=Image.Quantize.MEDIANCUT), 'palette_333x516.png')
    rgba = picture(290, 223, 9).convert('RGBA')
    y, x = np.mgrid[0:223, 0:290]
    rgba.putalpha(Image.fromarray(((x * 7 + y * 3) % 256).astype(np.uint8), 'L'))
    save(rgba, 'rgba_290x223.png')
    g = np.asarray(picture(303, 384, 10).convert('L')).astype(np.uint16) * 3  # 0..765: I;16 -> RGB clips at 255
    save(Image.fromarray(g, 'I;16'), 'gray16_303x384.png')
    return names


def main():
    try:
        from transformers.models.clip import CLIPImageProcessorPil as CLIPImageProcessor
    except ImportError:  # transformers 4: the PIL processor is the default one
        from transformers import CLIPImageProcessor

    warnings.filterwarnings('ignore')
    names = make_images()
    with open(CLIP_PRE) as f:
        hf = CLIPImageProcessor(**json.load(f))
    tf = clip_transform(N_PX)
    expected = {
        'generator': {
            'script': 'scripts/make_clip_preprocess_golden.py',
            'pillow': mif.PIL.__version__,
            'torchvision': torchvision.__version__,
            'torch': torch.__version__,
            'transformers': __import__('transformers').__version__,
            'hfProcessor': CLIPImageProcessor.__name__,
            'numpy': np.__version__,
        },
        'preprocessor_config': 'test/fixtures/clip/model/preprocessor_config.json',
        'images': [],
    }
    for i, name in enumerate(names):
        im = Image.open(os.path.join(OUT, name))
        mode = im.mode
        rgb = im.convert('RGB')  # torchvision's pil_loader
        rw, rh = resized(rgb.width, rgb.height)
        ours = tf(rgb).numpy()
        theirs = hf(rgb, return_tensors='np')['pixel_values'][0]
        entry = {
            'image': name,
            'mode': mode,
            'size': [rgb.width, rgb.height],
            'resized': [rw, rh],
            'offset': {
                'openai': [int(round((rw - N_PX) / 2)), int(round((rh - N_PX) / 2))],
                'hf': [(rw - N_PX) // 2, (rh - N_PX) // 2],
            },
            'openai': describe(ours, 2 * i),
            'hf': describe(theirs, 2 * i + 1, border=False),
            'maxAbsDiffOpenaiHf': float(np.abs(ours.astype(np.float64) - theirs).max()),
        }
        expected['images'].append(entry)
        print(f'{name:22s} {mode:5s} {rgb.width}x{rgb.height} -> {rw}x{rh}  crop openai {entry["offset"]["openai"]}'
              f' hf {entry["offset"]["hf"]}  max |openai - hf| {entry["maxAbsDiffOpenaiHf"]:.4f}')
    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(OUT, fn)) for fn in os.listdir(OUT))
    print(f'wrote {len(names)} images and expected.json; {os.path.relpath(OUT, ROOT)} holds {total / 1024:.0f} KiB')
    assert total < 1024 * 1024, 'fixture folder must stay under 1 MB'


if __name__ == '__main__':
    main()
