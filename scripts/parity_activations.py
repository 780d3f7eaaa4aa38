#!/usr/bin/env python3
"""Parity of `clip-dissect activations` with PyTorch forward hooks on full-size torchvision ResNets (a dev tool).

    npx tsc -p tsconfig.json                                   # the CLI under test is dist/
    python3 scripts/parity_activations.py --model resnet18     # then --model resnet50 (a few minutes on 2 cores)

The bar (the issue's): pooled activations (avg and max) of resnet18 / resnet50 (TorchScript export) over 120
mixed images equal the PyTorch hooks within 1e-3 relative, for conv1, layer1..layer4 and fc.

1. Builds torchvision `resnet18` / `resnet50` with random weights (`torch.manual_seed(0)`; BatchNorm running
   statistics and affine parameters randomised too, with export_target_models.randomise_batchnorm and a generator
   seeded 1, so that folding a BatchNorm into its Conv changes the Conv's output), eval mode, and exports it with
   the TorchScript exporter (`dynamo=False`, dynamic batch axis) twice into the work folder (never committed):
   `<model>_ts.onnx` (default constant folding: every BatchNorm is folded into its Conv, so ONNX `conv1` reads
   bn1(conv1(x)) and is compared with the hook on `bn1`; the hook on `conv1` is shown for information) and
   `<model>_ts_nofold.onnx` (`do_constant_folding=False`: `conv1` is compared with the hook on `conv1`).
2. Writes a deterministic probe set: 120 images in 6 class folders (names that test code-point sorting, a nested
   sub-folder, a hidden file, upper-case extensions, a non-image file), sizes from 1x1 and 7x5 to 900x60, 60x900
   and 1200x900, formats JPEG 4:2:0 / 4:2:2 / 4:4:4 / progressive / grayscale / CMYK / EXIF orientation 6, PNG
   RGB / RGBA (varying alpha) / palette with one transparent index / palette with per-entry alpha / L / LA /
   16-bit gray / 1-bit, WebP lossy / lossless / lossless RGBA, TIFF raw / LZW / deflate / RGBA. Candidate files
   in BMP, PPM and PGM (in torchvision's IMG_EXTENSIONS) are decoded too, outside the probe set. Every file is
   decoded by PIL (`Image.open(p).convert('RGB')`) and by clip-dissect's decoder (sharp; dist/src/data/decode.js);
   files either one rejects are left out of the probe set and listed. For the rest it reports whether the RGB
   pixels are identical, and the largest difference of clip-dissect's preprocessed input tensor
   (dist/src/data/preprocess.js, IMAGENET_PREPROCESS) from torchvision's transform.
3. Runs PyTorch over `torchvision.datasets.ImageFolder(probe, transform)` with the ImageNet transform (Resize(256)
   bilinear, CenterCrop(224), ToTensor, Normalize) and forward hooks that pool as the official CLIP-Dissect
   `utils.get_activation` does (4-D outputs: mean / amax over dims [2, 3]; 2-D outputs as they are), and runs
   `node bin/clip-dissect.js activations --pool avg|max -q` on both exports over the same folder.
4. Compares, per export, layer and pool: the image order (images.txt against ImageFolder.samples), max |diff|,
   `rel(col)` = max over images i and neurons k of |ours - ref| / s_k with s_k = max_i |ref[i, k]| (the neuron's
   scale over the probe set; floored at 1e-6 * max |ref| for dead neurons), and, for information,
   `rel(elem)` = max |ours - ref| / max(|ref|, 1e-6 * max |ref|) elementwise and how many elements exceed 1e-3
   that way. The bar is applied to rel(col): an elementwise relative error is dominated by pooled values that
   happen to lie near 0 (avg-pooled conv outputs, logits), where float32 summation order alone moves the
   relative error arbitrarily far.

Prints the table and writes it to bench/parity/activations-<model>.txt (`--results FILE` elsewhere). Exit status
1 when a compared row exceeds 1e-3 rel(col) or the image order differs, 2 when the CLI fails.
"""

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import torch

sys.dont_write_bytecode = True  # no scripts/__pycache__ from the sibling imports
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Importing these applies their workarounds for a torchvision wheel built against another torch.
import export_target_models as etm  # noqa: E402
import make_activation_golden as mag  # noqa: E402
import PIL  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision import datasets  # noqa: E402

T = mag.T
warnings.filterwarnings("ignore", message="Palette images with Transparency expressed in bytes")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(ROOT, 'bin', 'clip-dissect.js')
DIST = os.path.join(ROOT, 'dist')
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
TOL = 1e-3
LAYERS = ['conv1', 'layer1', 'layer2', 'layer3', 'layer4', 'fc']
HOOKS = ['conv1', 'bn1', 'layer1', 'layer2', 'layer3', 'layer4', 'fc']

# ---------------------------------------------------------------------------------------------- probe images

CLASSES = ['Bird', '_misc', 'a10', 'a2', 'cat', 'ünicode']  # ImageFolder order: code points ('B' < '_' < 'a')
FORMATS = [
    # (kind, extension)
    ('jpeg420', '.jpg'), ('png_rgb', '.png'), ('jpeg444', '.JPG'), ('png_rgba', '.png'), ('jpeg_progressive', '.jpeg'),
    ('png_palette_trns', '.png'), ('webp_lossy', '.webp'), ('png_gray16', '.png'), ('jpeg_exif6', '.jpg'),
    ('png_1bit', '.PNG'), ('tiff_raw', '.tif'), ('jpeg422', '.jpg'), ('png_gray', '.png'), ('webp_lossless', '.webp'),
    ('jpeg_gray', '.jpg'), ('png_palette_alpha', '.png'), ('tiff_lzw', '.tiff'), ('png_la', '.png'),
    ('jpeg_cmyk', '.jpg'), ('webp_rgba', '.webp'), ('tiff_deflate', '.tif'), ('tiff_rgba', '.tiff'),
]
SIZES = [  # (width, height)
    (1, 1), (640, 480), (7, 5), (900, 60), (224, 224), (60, 900), (500, 375), (256, 256), (333, 500), (2, 3),
    (255, 257), (1024, 768), (32, 32), (480, 640), (300, 299), (64, 48), (1200, 900), (257, 256), (120, 1000),
    (800, 600), (5, 7), (360, 240), (199, 301),
]
PREFIXES = ['IMG_', 'img_', 'Img-', 'x', '']
EXTRA_FORMATS = [('bmp', '.bmp'), ('ppm', '.ppm'), ('pgm', '.pgm')]


def content(w, h, rng):
    """Smooth colour waves, a few flat shapes and noise: uint8 RGB, h x w x 3."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.empty((h, w, 3))
    for c in range(3):
        fx, fy, ph = rng.uniform(0.3, 5), rng.uniform(0.3, 5), rng.uniform(0, 2 * math.pi)
        img[..., c] = 127.5 + rng.uniform(40, 120) * np.sin(2 * math.pi * (fx * x / w + fy * y / h) + ph)
    for _ in range(int(rng.integers(0, 6))):
        x0, x1 = sorted(rng.integers(0, w + 1, 2))
        y0, y1 = sorted(rng.integers(0, h + 1, 2))
        col = rng.integers(0, 256, 3)
        if rng.random() < 0.5:
            img[y0:y1 + 1, x0:x1 + 1] = col
        else:
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.5, max(w, h) / 2 + 1)
            img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = col
    img += rng.normal(0, rng.uniform(0, 25), img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def save_image(path, kind, rgb, rng):
    h, w = rgb.shape[:2]
    im = Image.fromarray(rgb, 'RGB')
    y, x = np.mgrid[0:h, 0:w]
    if kind == 'jpeg420':
        im.save(path, 'JPEG', quality=90, subsampling=2)
    elif kind == 'jpeg422':
        im.save(path, 'JPEG', quality=88, subsampling=1)
    elif kind == 'jpeg444':
        im.save(path, 'JPEG', quality=95, subsampling=0)
    elif kind == 'jpeg_progressive':
        im.save(path, 'JPEG', quality=85, subsampling=2, progressive=True)
    elif kind == 'jpeg_gray':
        im.convert('L').save(path, 'JPEG', quality=90)
    elif kind == 'jpeg_cmyk':
        im.convert('CMYK').save(path, 'JPEG', quality=92)
    elif kind == 'jpeg_exif6':
        exif = Image.Exif()
        exif[0x0112] = 6  # Orientation: rotate 90 CW to display; PIL's open (and so ImageFolder) ignores it
        im.save(path, 'JPEG', quality=90, subsampling=2, exif=exif.tobytes())
    elif kind == 'png_rgb':
        im.save(path, 'PNG')
    elif kind in ('png_rgba', 'webp_rgba', 'tiff_rgba'):
        alpha = (255 * (x + y) / max(w + h - 2, 1)).astype(np.float64) + rng.normal(0, 30, (h, w))
        alpha = np.clip(np.rint(alpha), 0, 255).astype(np.uint8)
        alpha[: max(1, h // 4), : max(1, w // 4)] = 0  # fully transparent corner (colour kept as stored)
        rgba = Image.fromarray(np.dstack([rgb, alpha]), 'RGBA')
        if kind == 'png_rgba':
            rgba.save(path, 'PNG')
        elif kind == 'webp_rgba':
            rgba.save(path, 'WEBP', lossless=True, exact=True)
        else:
            rgba.save(path, 'TIFF', compression='tiff_lzw')
    elif kind == 'png_palette_trns':
        p = im.quantize(colors=48, method=Image.Quantize.MEDIANCUT)
        p.save(path, 'PNG', transparency=0)
    elif kind == 'png_palette_alpha':
        p = im.quantize(colors=32, method=Image.Quantize.MEDIANCUT)
        p.save(path, 'PNG', transparency=bytes(int(v) for v in rng.integers(0, 256, 32)))
    elif kind == 'png_gray':
        im.convert('L').save(path, 'PNG')
    elif kind == 'png_la':
        la = Image.merge('LA', [im.convert('L'), Image.fromarray(rgb[..., 0])])
        la.save(path, 'PNG')
    elif kind == 'png_gray16':
        # values 0..~600: PIL's I;16 -> RGB clips at 255, so both clipped and unclipped pixels occur
        g = rgb.astype(np.float64).mean(axis=2) * 2.4
        Image.fromarray(np.clip(np.rint(g), 0, 65535).astype(np.uint16)).save(path, 'PNG')
    elif kind == 'png_1bit':
        im.convert('1').save(path, 'PNG')
    elif kind == 'webp_lossy':
        im.save(path, 'WEBP', quality=80)
    elif kind == 'webp_lossless':
        im.save(path, 'WEBP', lossless=True)
    elif kind == 'tiff_raw':
        im.save(path, 'TIFF')
    elif kind == 'tiff_lzw':
        im.save(path, 'TIFF', compression='tiff_lzw')
    elif kind == 'tiff_deflate':
        im.save(path, 'TIFF', compression='tiff_adobe_deflate')
    elif kind == 'bmp':
        im.save(path, 'BMP')
    elif kind == 'ppm':
        im.save(path, 'PPM')
    elif kind == 'pgm':
        im.convert('L').save(path, 'PPM')
    else:
        raise ValueError(kind)


def make_probe(work, n):
    """Writes work/probe/<class>/... (n images) and work/candidates/ (formats to check only). Returns the specs."""
    probe = os.path.join(work, 'probe')
    cand = os.path.join(work, 'candidates')
    for d in (probe, cand):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    rng = np.random.default_rng(20240601)
    specs = []
    per_class = math.ceil(n / len(CLASSES))
    for i in range(n):
        kind, ext = FORMATS[i % len(FORMATS)]
        w, h = SIZES[(i * 7 + i // len(FORMATS)) % len(SIZES)]
        cls = CLASSES[i // per_class]
        j = i % per_class
        sub = cls
        if cls == 'cat' and j % 4 == 1:
            sub = os.path.join(cls, 'nested')
        elif cls == 'cat' and j % 4 == 3:
            sub = os.path.join(cls, 'Nested2')
        name = f'{PREFIXES[i % len(PREFIXES)]}{j}{ext}'
        if cls == '_misc' and j == 0:
            name = '.hidden' + ext
        specs.append({'kind': kind, 'size': [w, h], 'rel': os.path.join(sub, name)})
    for kind, ext in EXTRA_FORMATS:
        specs.append({'kind': kind, 'size': [97, 61], 'rel': os.path.join('..', 'candidates', 'extra_' + kind + ext),
                      'extra': True})
    for s in specs:
        path = os.path.normpath(os.path.join(probe, s['rel']))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        w, h = s['size']
        save_image(path, s['kind'], content(w, h, rng), rng)
        s['path'] = path
    with open(os.path.join(probe, 'a2', 'notes.txt'), 'w') as f:  # not an image: ignored by both
        f.write('not an image\n')
    return specs


NODE_DECODE = r"""
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [dist, listFile, outDir] = process.argv.slice(1);
const { decodeImageRGB } = await import(pathToFileURL(dist + '/src/data/decode.js').href);
const { preprocessImage, IMAGENET_PREPROCESS } = await import(pathToFileURL(dist + '/src/data/preprocess.js').href);
const paths = readFileSync(listFile, 'utf8').split('\n').filter(Boolean);
const res = [];
for (const [i, p] of paths.entries()) {
  try {
    const img = await decodeImageRGB(p);
    writeFileSync(`${outDir}/${i}.rgb`, img.data);
    const t = preprocessImage(img, IMAGENET_PREPROCESS);
    writeFileSync(`${outDir}/${i}.f32`, Buffer.from(t.buffer, t.byteOffset, t.byteLength));
    res.push({ ok: true, width: img.width, height: img.height });
  } catch (e) {
    res.push({ ok: false, code: e.code ?? null, message: String(e.message ?? e) });
  }
}
writeFileSync(`${outDir}/results.json`, JSON.stringify(res));
"""


def check_decoding(work, specs, transform):
    """Decodes every file with PIL and with clip-dissect's decoder; removes from the probe set the files either
    rejects. Adds 'pil', 'ours', 'pixels_equal', 'pixel_maxdiff', 'input_maxdiff' to each spec."""
    out = os.path.join(work, 'decoded')
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    listing = os.path.join(out, 'list.txt')
    with open(listing, 'w') as f:
        f.write(''.join(s['path'] + '\n' for s in specs))
    subprocess.run(['node', '--input-type=module', '-e', NODE_DECODE, DIST, listing, out], check=True)
    with open(os.path.join(out, 'results.json')) as f:
        ours = json.load(f)
    for i, (s, r) in enumerate(zip(specs, ours)):
        s['ours'] = 'ok' if r['ok'] else f"{r['code']}: {r['message']}"
        try:
            with Image.open(s['path']) as im:
                s['pil_mode'] = im.mode
                pil = im.convert('RGB')
            s['pil'] = 'ok'
        except Exception as e:  # noqa: BLE001
            s['pil'] = f'{type(e).__name__}: {e}'
            pil = None
        if r['ok'] and pil is not None:
            a = np.asarray(pil)
            b = np.fromfile(os.path.join(out, f'{i}.rgb'), np.uint8)
            if (r['width'], r['height']) != pil.size:
                s['pixels_equal'] = False
                s['pixel_maxdiff'] = f"size {r['width']}x{r['height']} vs {pil.size[0]}x{pil.size[1]}"
            else:
                b = b.reshape(a.shape)
                d = np.abs(a.astype(np.int16) - b.astype(np.int16))
                s['pixels_equal'] = bool(d.max() == 0)
                s['pixel_maxdiff'] = int(d.max())
            x_ref = transform(pil).numpy()
            x_ours = np.fromfile(os.path.join(out, f'{i}.f32'), np.float32).reshape(x_ref.shape)
            s['input_maxdiff'] = float(np.abs(x_ref - x_ours).max())
        if not (r['ok'] and pil is not None) and not s.get('extra'):
            os.remove(s['path'])  # rejected: not part of the probe set
    return specs


# ---------------------------------------------------------------------------------------------- models


def build_model(name):
    torch.manual_seed(0)
    model = {'resnet18': etm.resnet18, 'resnet50': etm.resnet50}[name]()
    etm.randomise_batchnorm(model, torch.Generator().manual_seed(1))
    return model.eval()


def export_models(model, name, work):
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(5))
    paths = {'ts': os.path.join(work, f'{name}_ts.onnx'), 'ts_nofold': os.path.join(work, f'{name}_ts_nofold.onnx')}
    t0 = time.time()
    etm.export(model, x, paths['ts'], dynamo=False)
    etm.export(model, x, paths['ts_nofold'], dynamo=False, do_constant_folding=False)
    return paths, time.time() - t0


def torch_reference(model, probe, transform, batch_size):
    """ImageFolder + DataLoader + forward hooks pooled as utils.get_activation. {module: {pool: N x K}}."""
    ds = datasets.ImageFolder(probe, transform=transform)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)
    named = dict(model.named_modules())
    acts = {m: {'avg': [], 'max': []} for m in HOOKS}

    def hook_for(name):
        def hook(_m, _inp, output):
            t = output.detach()
            if t.dim() == 4:  # utils.get_activation: mean / amax over dims [2, 3]
                acts[name]['avg'].append(t.mean(dim=[2, 3]))
                acts[name]['max'].append(t.amax(dim=[2, 3]))
            elif t.dim() == 2:
                acts[name]['avg'].append(t.clone())
                acts[name]['max'].append(t.clone())
            else:
                raise ValueError(f'{name}: rank {t.dim()}')
        return hook

    handles = [named[m].register_forward_hook(hook_for(m)) for m in HOOKS]
    t0 = time.time()
    with torch.no_grad():
        for xb, _ in loader:
            model(xb)
    elapsed = time.time() - t0
    for h in handles:
        h.remove()
    out = {m: {p: torch.cat(v).numpy().astype(np.float32) for p, v in pools.items()} for m, pools in acts.items()}
    return ds, out, elapsed


def run_cli(model_path, probe, pool, out, layers, batch_size, threads):
    shutil.rmtree(out, ignore_errors=True)
    cmd = ['node', CLI, 'activations', '--target', model_path, '--layers', ','.join(layers), '--probe', probe,
           '--pool', pool, '--batch-size', str(batch_size), '-q', '--out', out]
    if threads:
        cmd += ['--threads', str(threads)]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.time() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(2)
    with open(os.path.join(out, 'activations.json')) as f:
        meta = json.load(f)
    with open(os.path.join(out, 'images.txt')) as f:
        images = f.read().splitlines()
    arrays = {}
    for layer in meta['layers']:
        arrays[layer['name']] = np.load(os.path.join(out, layer['file']))
    return arrays, images, meta, elapsed, ' '.join(cmd)


def compare(ours, ref):
    if ours.shape != ref.shape:
        return {'shape': f'{ours.shape} vs {ref.shape}', 'rel_col': math.inf, 'rel_elem': math.inf,
                'abs': math.inf, 'n_elem': -1, 'scale': float('nan'), 'ref_at_worst': float('nan'),
                'col_at_worst': float('nan')}
    ours = ours.astype(np.float64)
    ref = ref.astype(np.float64)
    d = np.abs(ours - ref)
    gmax = float(np.abs(ref).max())
    floor = max(1e-6 * gmax, 1e-30)
    col = np.maximum(np.abs(ref).max(axis=0), floor)
    elem = d / np.maximum(np.abs(ref), floor)
    worst = np.unravel_index(int(elem.argmax()), elem.shape)
    return {'rel_col': float((d / col).max()), 'rel_elem': float(elem.max()), 'abs': float(d.max()),
            'ref_at_worst': float(ref[worst]), 'col_at_worst': float(col[worst[1]]),
            'n_elem': int((elem > TOL).sum()), 'scale': gmax, 'shape': None}


# ---------------------------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', choices=['resnet18', 'resnet50'], required=True)
    ap.add_argument('--work', default='/tmp/clip-dissect-parity-activations',
                    help='work folder for the exports, probe images and CLI outputs (default %(default)s)')
    ap.add_argument('--n', type=int, default=120, help='number of probe images (default 120)')
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--threads', type=int, default=0, help='torch and CLI threads (default: all cores)')
    ap.add_argument('--results', help='table file (default bench/parity/activations-<model>.txt)')
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    results = args.results or os.path.join(ROOT, 'bench', 'parity', f'activations-{args.model}.txt')
    lines = []

    def say(s=''):
        print(s, flush=True)
        lines.append(s)

    transform = T.Compose([
        T.Resize(256, interpolation=T.InterpolationMode.BILINEAR),
        T.CenterCrop(224),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ])

    # probe set + decoder check
    specs = make_probe(work, args.n)
    specs = check_decoding(work, specs, transform)
    probe = os.path.join(work, 'probe')

    # models
    model = build_model(args.model)
    paths, t_export = export_models(model, args.model, work)
    ds, ref, t_torch = torch_reference(model, probe, transform, args.batch_size)

    # CLI runs
    runs = {}
    for exp, layers in (('ts', LAYERS), ('ts_nofold', ['conv1', 'bn1'] + LAYERS[1:])):
        for pool in ('avg', 'max'):
            runs[(exp, pool)] = run_cli(paths[exp], probe, pool, os.path.join(work, f'out_{args.model}_{exp}_{pool}'),
                                        layers, args.batch_size, args.threads)

    # report
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    say(f'# clip-dissect activations vs PyTorch hooks: {args.model}')
    say(f'date {time.strftime("%Y-%m-%d %H:%M:%S %Z")}; git {commit} (dist/ as built); host {platform.machine()}, '
        f'{os.cpu_count()} CPUs; torch {torch.__version__}, torchvision {torchvision.__version__}, '
        f'pillow {PIL.__version__}, numpy {np.__version__}')
    say(f'model: torchvision {args.model}, random weights (torch.manual_seed(0); BatchNorm statistics/affine '
        f'randomised, seed 1), eval; TorchScript exporter (dynamo=False), dynamic batch')
    say(f'  ts        = {paths["ts"]} (default constant folding: BatchNorms folded into Convs)')
    say(f'  ts_nofold = {paths["ts_nofold"]} (do_constant_folding=False)')
    say(f'preprocessing: Resize(256, bilinear) on PIL, CenterCrop(224), ToTensor, Normalize(ImageNet) / '
        f'clip-dissect default (IMAGENET_PREPROCESS); batch size {args.batch_size}')
    say()

    # decoding
    main_specs = [s for s in specs if not s.get('extra')]
    kept = [s for s in main_specs if os.path.exists(s['path'])]
    say(f'## probe set: {len(kept)} of {len(main_specs)} generated images kept, {len(CLASSES)} classes '
        f'({", ".join(CLASSES)}), {probe}')
    by_kind = {}
    for s in specs:
        by_kind.setdefault(s['kind'], []).append(s)
    say(f'{"format":<18} {"n":>3} {"PIL":>4} {"ours":>4} {"pixels==":>8} {"max|px|":>7} {"max|input diff|":>15}  '
        f'sizes / notes')
    for kind, ss in by_kind.items():
        pil_ok = sum(s['pil'] == 'ok' for s in ss)
        our_ok = sum(s['ours'] == 'ok' for s in ss)
        both = [s for s in ss if 'pixels_equal' in s]
        eq = sum(s['pixels_equal'] for s in both)
        pxd = max((s['pixel_maxdiff'] for s in both if isinstance(s['pixel_maxdiff'], int)), default=0)
        ind = max((s['input_maxdiff'] for s in both), default=0.0)
        notes = ' '.join(f'{s["size"][0]}x{s["size"][1]}' for s in ss)
        errs = sorted({s['ours'] for s in ss if s['ours'] != 'ok'} | {s['pil'] for s in ss if s['pil'] != 'ok'})
        if errs:
            notes += '; rejected: ' + ' | '.join(e.split('; supported')[0][-140:] for e in errs)
        say(f'{kind:<18} {len(ss):>3} {pil_ok:>4} {our_ok:>4} {eq:>4}/{len(both):<3} {pxd:>7} {ind:>15.3g}  {notes}')
    say()

    # image order
    samples = [p for p, _ in ds.samples]
    order_ok = True
    for key, (_, images, _, _, _) in runs.items():
        if images != samples:
            order_ok = False
            say(f'IMAGE ORDER DIFFERS ({key[0]} {key[1]}): {len(images)} rows vs {len(samples)} ImageFolder samples')
            for k, (a, b) in enumerate(zip(images, samples)):
                if a != b:
                    say(f'  first difference at row {k}: ours {a!r}, ImageFolder {b!r}')
                    break
    if order_ok:
        say(f'image order: images.txt == ImageFolder.samples for all {len(runs)} runs ({len(samples)} images; '
            f'first {os.path.relpath(samples[0], probe)}, last {os.path.relpath(samples[-1], probe)})')
    say()

    # activations
    say('## activations: rel(col) = max |ours - ref| / max_i |ref[i, k]| (per neuron k; the bar, 1e-3); '
        'rel(elem) = max |ours - ref| / max(|ref|, 1e-6 max|ref|), n>1e-3 = elements above 1e-3 that way, '
        'worst elem = ref value and s_k where rel(elem) peaks')
    say(f'{"export":<10} {"layer":<7} {"hook":<6} {"pool":<4} {"N x K":>10} {"max|ref|":>10} {"max|diff|":>10} '
        f'{"rel(col)":>10} {"rel(elem)":>10} {"n>1e-3":>7} {"worst elem: ref / s_k":>21}  verdict')
    failed = []
    for exp in ('ts', 'ts_nofold'):
        layers = ['conv1', 'conv1'] + LAYERS[1:] if exp == 'ts' else ['conv1', 'bn1'] + LAYERS[1:]
        for pool in ('avg', 'max'):
            arrays = runs[(exp, pool)][0]
            for idx, layer in enumerate(layers):
                if exp == 'ts' and layer == 'conv1':
                    hook = 'bn1' if idx == 0 else 'conv1'  # folded conv reads bn1(conv1(x)); 2nd row: info only
                else:
                    hook = layer
                gated = layer in LAYERS and not (exp == 'ts' and layer == 'conv1' and hook == 'conv1')
                r = compare(arrays[layer], ref[hook][pool])
                p = '-' if layer == 'fc' else pool  # fc is 2-D: not pooled
                if r['shape']:
                    verdict = 'SHAPE ' + r['shape']
                elif not gated:
                    verdict = 'info (folded conv1 vs unfolded conv1 hook)' if layer == 'conv1' else 'info'
                else:
                    verdict = 'ok' if r['rel_col'] <= TOL else 'ABOVE 1e-3'
                if gated and (r['shape'] or r['rel_col'] > TOL):
                    failed.append(f'{exp} {layer} {pool}')
                nk = f'{arrays[layer].shape[0]}x{arrays[layer].shape[1]}'
                say(f'{exp:<10} {layer:<7} {hook:<6} {p:<4} {nk:>10} {r["scale"]:>10.4g} {r["abs"]:>10.3g} '
                    f'{r["rel_col"]:>10.3g} {r["rel_elem"]:>10.3g} {r["n_elem"]:>7} '
                    f'{r["ref_at_worst"]:>10.2g} / {r["col_at_worst"]:<8.3g}  {verdict}')
    say()
    for exp in ('ts', 'ts_nofold'):
        meta = runs[(exp, 'avg')][2]
        warns = meta.get('warnings') or []
        say(f'CLI ({exp}): exporter {meta["target"].get("exporter")}, onnxruntime {meta.get("onnxruntime")}, '
            f'sharp {meta.get("sharp")}; {len(warns)} warning(s)' + (f': {str(warns[0])[:160]} …' if warns else ''))
    say(f'timings: export {t_export:.1f} s; torch (ImageFolder + forward with hooks, {torch.get_num_threads()} '
        f'threads) {t_torch:.1f} s; CLI ' + ', '.join(f'{e} {p} {v[3]:.1f} s' for (e, p), v in runs.items()))
    say(f'command: {runs[("ts", "avg")][4]}')
    verdict = 'PASS' if order_ok and not failed else 'FAIL'
    say(f'{verdict}: {len(failed)} compared rows above 1e-3 rel(col)' + (f' ({", ".join(failed)})' if failed else '')
        + ('' if order_ok else '; image order differs'))
    os.makedirs(os.path.dirname(os.path.abspath(results)), exist_ok=True)
    with open(results, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print(f'(written to {results})')
    return 0 if verdict == 'PASS' else 1


if __name__ == '__main__':
    sys.exit(main())
