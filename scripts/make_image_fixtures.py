#!/usr/bin/env python3
"""Image decode / resize / preprocess fixtures for src/data/ (a dev tool; the tests never run Python).

    python3 scripts/make_image_fixtures.py     # (re)writes test/fixtures/images/

Writes a handful of small deterministic images (PNG in every colour mode PIL reads, JPEG 4:2:0 / 4:2:2 /
4:4:4 / grayscale / CMYK / EXIF orientation 6, a 1x1, a 300x20 and a 10x1100 image), a few broken files, and
`expected.json` with what PIL and torchvision make of them:

* `images[name]`: PIL's `Image.open(p).mode`, size and `convert('RGB')` pixels (HWC uint8, zlib + base64).
* `resize[]`: `Image.resize((w, h), filter)` of the RGB image (uint8, base64) for bilinear, bicubic and
  nearest, up and down, odd sizes, one axis only (uint8, zlib + base64).
* `preprocess[]`: torchvision `Resize(r, interp)`, `CenterCrop(c)`, `ToTensor()`, `Normalize(mean, std)` of
  the RGB image, the CHW float32 tensor in `preprocess/<image>__<variant>.npy`.
* `preprocess224[]`: the same for torchvision's ImageNet transform and OpenAI CLIP's transform at 224: the
  sha256 of the float32 bytes, their float64 sum and 64 sampled (index, value) pairs (full tensors are big).
* `errors`: PIL's error for each broken file.

torchvision's C extension (`torchvision::nms` ...) is not needed here; when the installed torchvision wheel was
built against another torch (a CUDA build next to a CPU torch), its fake-op registration is skipped so that the
pure-Python transforms still import.
"""

import base64
import hashlib
import io
import json
import os
import struct
import warnings
import zlib

import numpy as np
import torch
import torch.library
from PIL import Image, ImageCms, ImageDraw

_register_fake = torch.library.register_fake


def _register_fake_tolerant(name, *args, **kwargs):
    if isinstance(name, str) and name.startswith('torchvision::'):
        return lambda f: f
    return _register_fake(name, *args, **kwargs)


torch.library.register_fake = _register_fake_tolerant
import PIL  # noqa: E402
import torchvision  # noqa: E402
from torchvision import transforms as T  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'images')
PRE = os.path.join(OUT, 'preprocess')

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
INTERP = {
    'bilinear': T.InterpolationMode.BILINEAR,
    'bicubic': T.InterpolationMode.BICUBIC,
    'nearest': T.InterpolationMode.NEAREST,
}
PIL_FILTER = {'bilinear': Image.BILINEAR, 'bicubic': Image.BICUBIC, 'nearest': Image.NEAREST}

rng = np.random.RandomState(1234)


def b64(a):
    """uint8 array -> base64 of its zlib-deflated bytes (C order); node reads it with zlib.inflateSync."""
    return base64.b64encode(zlib.compress(np.ascontiguousarray(a, dtype=np.uint8).tobytes(), 9)).decode('ascii')


def scene(w, h, seed):
    """A smooth colourful picture with edges and a little noise (compresses well, resamples non-trivially)."""
    r = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack(
        [
            128 + 100 * np.sin(x / max(w, 1) * 6.3 + seed),
            128 + 100 * np.cos(y / max(h, 1) * 4.1 + seed),
            (x + y) / max(w + h - 2, 1) * 255,
        ],
        axis=-1,
    )
    img += r.normal(0, 12, img.shape)
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), 'RGB')
    d = ImageDraw.Draw(im)
    d.rectangle([w // 5, h // 4, w // 2, h // 2], fill=(250, 20, 30))
    d.ellipse([w // 2, h // 3, w - 2, h - 2], fill=(10, 200, 60))
    d.line([0, h - 1, w - 1, 0], fill=(255, 255, 255), width=1)
    return im


def png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16(path, arr, color_type):
    """A 16-bit PNG by hand (PIL cannot write 16-bit RGB / RGBA). arr: HxWxC uint16."""
    h, w = arr.shape[:2]
    raw = b''.join(b'\x00' + arr[i].astype('>u2').tobytes() for i in range(h))
    data = b'\x89PNG\r\n\x1a\n'
    data += png_chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, color_type, 0, 0, 0))
    data += png_chunk(b'IDAT', zlib.compress(raw, 9))
    data += png_chunk(b'IEND', b'')
    with open(path, 'wb') as f:
        f.write(data)


def s15f16(v):
    return struct.pack('>i', int(round(v * 65536)))


def make_icc_profile():
    """A minimal ICC v2 RGB display profile (Adobe-RGB-like primaries adapted to D50, gamma 2.2), built by hand
    so that a fixture carries a non-sRGB embedded profile: PIL's convert('RGB') ignores it."""
    def xyz(x, y, z):
        return b'XYZ ' + b'\0' * 4 + s15f16(x) + s15f16(y) + s15f16(z)

    desc_text = b'clip-dissect test RGB\0'
    tags = [
        (b'desc', b'desc' + b'\0' * 4 + struct.pack('>I', len(desc_text)) + desc_text + b'\0' * 4 + b'\0' * 4
         + b'\0' * 2 + b'\0' + b'\0' * 67),
        (b'wtpt', xyz(0.9642, 1.0, 0.8249)),
        (b'rXYZ', xyz(0.6097, 0.3111, 0.0195)),
        (b'gXYZ', xyz(0.2053, 0.6257, 0.0609)),
        (b'bXYZ', xyz(0.1492, 0.0632, 0.7446)),
        (b'rTRC', b'curv' + b'\0' * 4 + struct.pack('>IH', 1, 0x0233) + b'\0' * 2),
        (b'cprt', b'text' + b'\0' * 4 + b'public domain\0'),
    ]
    tags += [(b'gTRC', tags[5][1]), (b'bTRC', tags[5][1])]
    table, body = b'', b''
    offset = 128 + 4 + 12 * len(tags)
    for sig, data in tags:
        while len(data) % 4:
            data += b'\0'
        table += sig + struct.pack('>II', offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack('>I', size) + b'lcms' + bytes([2, 0x10, 0, 0]) + b'mntr' + b'RGB ' + b'XYZ '
              + struct.pack('>6H', 2024, 1, 1, 0, 0, 0) + b'acsp' + b'\0' * 4 + b'\0' * 4 + b'\0' * 8 + b'\0' * 8
              + b'\0' * 4 + s15f16(0.9642) + s15f16(1.0) + s15f16(0.8249) + b'\0' * 4 + b'\0' * 16 + b'\0' * 28)
    assert len(header) == 128
    return header + struct.pack('>I', len(tags)) + table + body


def make_images():
    """Writes the images; returns the list of file names in test order."""
    names = []

    def save(im, name, **kw):
        im.save(os.path.join(OUT, name), **kw)
        names.append(name)

    # JPEGs: chroma subsampling 4:2:0 (PIL subsampling=2), 4:2:2 (1) and 4:4:4 (0); odd sizes on purpose.
    save(scene(64, 48, 1), 'rgb420.jpg', quality=85, subsampling=2)
    save(scene(45, 31, 2), 'rgb422.jpg', quality=90, subsampling=1)
    save(scene(50, 38, 3), 'rgb444.jpg', quality=95, subsampling=0)
    save(scene(33, 25, 4), 'rgb420_odd.jpg', quality=75, subsampling=2)
    save(scene(30, 20, 5).convert('L'), 'gray.jpg', quality=90)
    # EXIF orientation 6 ("rotate 90 CW to display"): PIL's open/convert does NOT apply it.
    exif = Image.Exif()
    exif[0x0112] = 6
    save(scene(48, 32, 6), 'exif6.jpg', quality=90, exif=exif.tobytes())
    # CMYK JPEG (PIL writes an Adobe marker and inverted CMYK; reading it back gives mode CMYK).
    cm = scene(40, 32, 7).convert('CMYK')
    cmyk = np.array(cm).copy()
    cmyk[..., 3] = (np.arange(40)[None, :] * 6 + np.arange(32)[:, None] * 2) % 256  # a real K channel
    save(Image.fromarray(cmyk, 'CMYK'), 'cmyk.jpg', quality=90)

    # A non-sRGB embedded ICC profile: sharp would convert it to sRGB unless told to ignore it; PIL ignores it.
    icc = make_icc_profile()
    ImageCms.ImageCmsProfile(io.BytesIO(icc))  # littlecms accepts it
    save(scene(36, 28, 16), 'icc_rgb.jpg', quality=90, icc_profile=icc)
    save(scene(26, 19, 17), 'icc_rgb.png', icc_profile=icc)

    # PNGs.
    save(scene(61, 47, 8), 'rgb_odd.png')
    rgba = np.array(scene(40, 30, 9).convert('RGBA'))
    rgba[..., 3] = (np.arange(40)[None, :] * 7 + np.arange(30)[:, None] * 3) % 256  # incl. alpha 0 and 255
    save(Image.fromarray(rgba, 'RGBA'), 'rgba.png')
    la = np.array(scene(23, 17, 10).convert('LA'))
    la[..., 1] = (np.arange(23)[None, :] * 11 + np.arange(17)[:, None] * 5) % 256
    save(Image.fromarray(la, 'LA'), 'la.png')
    pal = scene(33, 21, 11).quantize(colors=16, method=Image.Quantize.MEDIANCUT)
    alpha = bytes([255, 128, 0] + [255] * 13)  # tRNS: entry 1 half transparent, entry 2 fully transparent
    save(pal, 'palette.png', transparency=alpha)
    save(scene(37, 29, 12).convert('L'), 'gray.png')
    g16 = (np.arange(31)[None, :] * 2113 + np.arange(23)[:, None] * 37) % 65536
    g16[0, :8] = [0, 1, 100, 255, 256, 257, 4000, 65535]
    save(Image.fromarray(g16.astype(np.uint16)), 'gray16.png')  # PIL mode I;16
    rgb16 = rng.randint(0, 65536, size=(14, 20, 3)).astype(np.uint16)
    write_png16(os.path.join(OUT, 'rgb16.png'), rgb16, 2)
    names.append('rgb16.png')
    la16 = rng.randint(0, 65536, size=(7, 12, 2)).astype(np.uint16)  # PIL: LA from the high bytes
    write_png16(os.path.join(OUT, 'la16.png'), la16, 4)
    names.append('la16.png')
    rgba16 = rng.randint(0, 65536, size=(9, 11, 4)).astype(np.uint16)
    write_png16(os.path.join(OUT, 'rgba16.png'), rgba16, 6)
    names.append('rgba16.png')
    save(scene(19, 13, 13).convert('1'), 'bits1.png')
    save(Image.new('RGB', (1, 1), (200, 30, 99)), 'tiny1x1.png')
    save(scene(300, 20, 14), 'wide300x20.png')
    save(scene(10, 1100, 15), 'tall10x1100.png')  # height > 100 x width: PIL resizes it vertically first
    return names


def make_broken():
    """Broken files and PIL's verdict on each."""
    with open(os.path.join(OUT, 'rgb_odd.png'), 'rb') as f:
        png = f.read()
    with open(os.path.join(OUT, 'rgb420.jpg'), 'rb') as f:
        jpg = f.read()
    files = {
        'empty.png': b'',
        'truncated.png': png[: len(png) // 2],
        'truncated.jpg': jpg[: len(jpg) // 2],
        'not_an_image.txt': b'hello, this is not an image\n',
    }
    bmp = io.BytesIO()
    Image.new('RGB', (2, 2), (1, 2, 3)).save(bmp, 'BMP')  # PIL reads BMP; sharp/libvips does not
    files['unsupported.bmp'] = bmp.getvalue()
    errors = {}
    for name, data in files.items():
        path = os.path.join(OUT, name)
        with open(path, 'wb') as f:
            f.write(data)
        try:
            im = Image.open(path)
            im.convert('RGB')
            errors[name] = {'pil': None, 'pil_size': list(im.size)}
        except Exception as e:  # noqa: BLE001
            errors[name] = {'pil': f'{type(e).__name__}: {e}'}
    return errors


def tv_transform(resize, crop, interp, mean, std):
    return T.Compose([T.Resize(resize, interpolation=INTERP[interp]), T.CenterCrop(crop), T.ToTensor(),
                      T.Normalize(mean, std)])


SMALL_VARIANTS = {
    # name: (resize, crop, interpolation, mean, std)
    'r40c32_bilinear': (40, 32, 'bilinear', IMAGENET_MEAN, IMAGENET_STD),
    'r40c32_bicubic': (40, 32, 'bicubic', CLIP_MEAN, CLIP_STD),
}
EXTRA_VARIANTS = {
    'r40c32_nearest': (40, 32, 'nearest', IMAGENET_MEAN, IMAGENET_STD),
    # crop larger than the resized image: torchvision pads with 0 ((35-26)//2 = 4 left, 5 right).
    'r20c31x35_bilinear': (20, [31, 35], 'bilinear', CLIP_MEAN, CLIP_STD),
    'r17c15_bicubic': (17, 15, 'bicubic', IMAGENET_MEAN, IMAGENET_STD),
}
PREPROCESS_IMAGES = ['rgb420.jpg', 'rgb_odd.png', 'rgba.png', 'palette.png', 'gray16.png',
                     'tiny1x1.png', 'wide300x20.png', 'tall10x1100.png']
EXTRA_IMAGES = ['rgb420.jpg', 'rgb_odd.png', 'wide300x20.png']
RESIZE_CASES = {
    # image: list of (w, h)
    'rgb_odd.png': [(23, 17), (90, 70), (61, 20), (30, 47), (64, 50), (5, 3), (1, 1), (122, 5)],
    'rgb420.jpg': [(32, 24), (53, 40), (80, 61)],
    'tiny1x1.png': [(5, 4), (40, 40)],
    'wide300x20.png': [(150, 10), (7, 3), (37, 20)],
    'tall10x1100.png': [(5, 37), (10, 150), (4, 333), (3, 1100)],
    'gray.png': [(13, 11)],
}


def main():
    # convert('RGB') of a palette image whose tRNS holds several alphas warns; it is the case we want.
    warnings.filterwarnings('ignore', message='Palette images with Transparency')
    os.makedirs(PRE, exist_ok=True)
    for f in os.listdir(PRE):
        os.remove(os.path.join(PRE, f))
    names = make_images()
    errors = make_broken()

    expected = {
        'generator': {
            'script': 'scripts/make_image_fixtures.py',
            'pillow': PIL.__version__,
            'torchvision': torchvision.__version__,
            'torch': torch.__version__,
            'numpy': np.__version__,
        },
        'images': {},
        'resize': [],
        'preprocess': [],
        'preprocess224': [],
        'errors': errors,
    }
    rgb = {}
    for name in names:
        im = Image.open(os.path.join(OUT, name))
        mode = im.mode
        info = {k: v for k, v in im.info.items() if k in ('adobe', 'progressive', 'transparency') and
                not isinstance(v, bytes)}
        r = im.convert('RGB')
        rgb[name] = r
        a = np.asarray(r)
        exif = im.getexif()
        expected['images'][name] = {
            'mode': mode,
            'width': r.width,
            'height': r.height,
            'orientation': exif.get(0x0112),
            'info': info,
            'rgb': b64(a),
        }

    for name, sizes in RESIZE_CASES.items():
        for w, h in sizes:
            for filt, code in PIL_FILTER.items():
                out = rgb[name].resize((w, h), code)
                expected['resize'].append(
                    {'image': name, 'filter': filt, 'width': w, 'height': h, 'data': b64(np.asarray(out))})

    def run_variant(name, vname, resize, crop, interp, mean, std):
        t = tv_transform(resize, crop, interp, mean, std)(rgb[name]).numpy().astype(np.float32)
        fname = f'{name.replace(".", "_")}__{vname}.npy'
        np.save(os.path.join(PRE, fname), t)
        expected['preprocess'].append({'image': name, 'variant': vname, 'file': f'preprocess/{fname}',
                                       'resize': resize, 'crop': crop, 'interpolation': interp,
                                       'mean': mean, 'std': std, 'shape': list(t.shape)})

    for name in PREPROCESS_IMAGES:
        for vname, v in SMALL_VARIANTS.items():
            run_variant(name, vname, *v)
    for name in EXTRA_IMAGES:
        for vname, v in EXTRA_VARIANTS.items():
            run_variant(name, vname, *v)

    full = {
        'imagenet': T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                               T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]),
        # OpenAI CLIP's _transform(224) without its _convert_image_to_rgb (our input is RGB already).
        'clip': T.Compose([T.Resize(224, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224),
                           T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)]),
    }
    for name in PREPROCESS_IMAGES:
        for cname, tf in full.items():
            t = tf(rgb[name]).numpy().astype(np.float32)
            flat = t.reshape(-1)
            idx = np.sort(np.random.RandomState(len(name)).choice(flat.size, 64, replace=False))
            expected['preprocess224'].append({
                'image': name, 'config': cname, 'shape': list(t.shape),
                'sha256': hashlib.sha256(np.ascontiguousarray(t).astype('<f4').tobytes()).hexdigest(),
                'sum': float(flat.astype(np.float64).sum()),
                'samples': [[int(i), float(flat[i])] for i in idx],
            })

    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(OUT) for fn in fns)
    print(f'wrote {len(names)} images, {len(expected["resize"])} resize and {len(expected["preprocess"])} '
          f'preprocess cases; {OUT} holds {total / 1024:.0f} KiB')
    assert total < 1024 * 1024, 'fixture folder must stay under 1 MB'


if __name__ == '__main__':
    main()
