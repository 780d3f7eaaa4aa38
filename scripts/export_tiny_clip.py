#!/usr/bin/env python3
"""A tiny random-weight CLIP in the transformers.js (Xenova) ONNX layout, and PyTorch golden embeddings, for
src/models/onnx-clip-encoder.ts (a dev tool; the tests never run Python).

    python3 -m pip install torch transformers onnx onnxruntime numpy pillow
    python3 scripts/export_tiny_clip.py            # (re)writes test/fixtures/clip/

Needs ../shared/fixtures/clip-tokenizer/ (the real OpenAI CLIP tokenizer.json) for the token ids of the golden
concepts. Writes to test/fixtures/clip/:

    model/config.json                 the transformers CLIPConfig (text eos_token_id 2: argmax pooling, as the
                                      OpenAI checkpoints and their Xenova exports)
    model/preprocessor_config.json    OpenAI CLIP's (size 224, bicubic, crop 224, CLIP mean/std), legacy form
    model/onnx/text_model.onnx        input_ids int64 [batch, sequence] -> text_embeds float32 [batch, 16]
    model/onnx/vision_model.onnx      pixel_values float32 [batch, 3, 224, 224] -> image_embeds float32 [batch, 16]
    concepts.json                     the golden concepts and their token ids (77 at most, end token kept)
    text_embeds.npy                   get_text_features of those ids padded with 0 to 77 (clip.tokenize's padding)
    image_embeds_synthetic.npy        get_image_features of a synthetic batch of 3 images, given by a formula that
                                      the tests reproduce (see synthetic_pixels), so no pixels are stored
    image_embeds_files.npy            get_image_features of test/fixtures/images/{IMAGE_FILES} preprocessed by
                                      transformers' CLIPImageProcessorPil (PIL bicubic, center crop, CLIP mean/std)

The tokenizer files are NOT copied (../shared is not committed): the tests assemble a model folder in a temp
directory from model/ and ../shared/fixtures/clip-tokenizer/.

Sizes: the text tower keeps the real vocabulary (49408 tokens, so that real token ids work) with hidden size 12,
which makes its token-embedding table 2.4 MB; everything else is small.
"""

import json
import os
import sys
import types

import numpy as np
import torch

try:
    import torchvision  # noqa: F401
except (RuntimeError, ImportError):
    # A torchvision wheel built against another torch fails while registering its C++ operators; transformers
    # imports it, and needs none of them here.
    for name in [k for k in sys.modules if k.startswith('torchvision')]:
        del sys.modules[name]
    sys.modules['torchvision._meta_registrations'] = types.ModuleType('torchvision._meta_registrations')
    try:
        import torchvision  # noqa: F401
    except Exception:
        pass

from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'clip')
TOKENIZER = os.path.join(ROOT, '..', 'shared', 'fixtures', 'clip-tokenizer')
IMAGES = os.path.join(ROOT, 'test', 'fixtures', 'images')
IMAGE_FILES = ['rgb444.jpg', 'rgb_odd.png', 'tall10x1100.png']

CONTEXT = 77
BOS, EOS = 49406, 49407

CONCEPTS = [
    'dog',
    'a photo of a cat',
    'traffic light',
    'the',
    'red',
    "don't stop",
    'x',
    'ice cream',
    'airplane wing over the mountains at sunset',
    # 120 words: 122 tokens with the start and end tokens, cut to 77 keeping the end token
    ' '.join(['striped'] * 60 + ['zebra'] * 60),
    'fire hydrant',
    'tree',
]

PREPROCESSOR = {
    'crop_size': 224,
    'do_center_crop': True,
    'do_normalize': True,
    'do_resize': True,
    'feature_extractor_type': 'CLIPFeatureExtractor',
    'image_mean': [0.48145466, 0.4578275, 0.40821073],
    'image_std': [0.26862954, 0.26130258, 0.27577711],
    'resample': 3,
    'size': 224,
}


def synthetic_pixels(n=3, size=224):
    """An NCHW float32 batch given by a formula that TypeScript reproduces bit for bit:
    x[i] = float32(((i * 7919 + 13) % 1000) / 250 - 2) over the flat index i."""
    i = np.arange(n * 3 * size * size, dtype=np.int64)
    return (((i * 7919 + 13) % 1000) / 250.0 - 2.0).astype(np.float32).reshape(n, 3, size, size)


def tokenize(tok, texts):
    """clip.tokenize(texts, truncate=True)'s ids, unpadded: [BOS, ..., EOS], cut to 77 with EOS kept last."""
    out = []
    for t in texts:
        ids = tok(t)['input_ids']
        assert ids[0] == BOS and ids[-1] == EOS, ids
        if len(ids) > CONTEXT:
            ids = ids[: CONTEXT - 1] + [EOS]
        out.append(ids)
    return out


def main():
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=49408,
            hidden_size=12,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=CONTEXT,
            # The OpenAI checkpoints' legacy ids: eos_token_id 2 makes transformers pool at argmax(input_ids).
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
        ),
        vision_config=dict(
            image_size=224,
            patch_size=32,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
        ),
        projection_dim=16,
    )
    config._attn_implementation = 'eager'
    model = CLIPModel(config).eval()
    # Random weights of a larger scale than the default init (std 0.02), so that the embeddings depend visibly
    # on every token and pixel.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.3)
        model.text_model.embeddings.token_embedding.weight.normal_(0, 1.0)
        model.text_model.embeddings.position_embedding.weight.normal_(0, 0.5)

    os.makedirs(os.path.join(OUT, 'model', 'onnx'), exist_ok=True)
    cfg = config.to_dict()
    cfg.pop('transformers_version', None)
    with open(os.path.join(OUT, 'model', 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write('\n')
    with open(os.path.join(OUT, 'model', 'preprocessor_config.json'), 'w') as f:
        json.dump(PREPROCESSOR, f, indent=2)
        f.write('\n')

    class Text(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids):
            return self.m.get_text_features(input_ids=input_ids).pooler_output

    class Vision(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            return self.m.get_image_features(pixel_values=pixel_values).pooler_output

    ids_example = torch.tensor([[BOS, 320, 1929, EOS], [BOS, 1929, EOS, 0]], dtype=torch.int64)
    torch.onnx.export(
        Text(model),
        (ids_example,),
        os.path.join(OUT, 'model', 'onnx', 'text_model.onnx'),
        input_names=['input_ids'],
        output_names=['text_embeds'],
        dynamic_axes={'input_ids': {0: 'batch_size', 1: 'sequence_length'}, 'text_embeds': {0: 'batch_size'}},
        opset_version=17,
        dynamo=False,
    )
    torch.onnx.export(
        Vision(model),
        (torch.from_numpy(synthetic_pixels(2)),),
        os.path.join(OUT, 'model', 'onnx', 'vision_model.onnx'),
        input_names=['pixel_values'],
        output_names=['image_embeds'],
        dynamic_axes={'pixel_values': {0: 'batch_size'}, 'image_embeds': {0: 'batch_size'}},
        opset_version=17,
        dynamo=False,
    )

    # Golden text embeddings: the reference pads clip.tokenize's ids with 0 to 77.
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(TOKENIZER, 'tokenizer.json'))
    ids = tokenize(tok, CONCEPTS)
    padded = torch.zeros((len(ids), CONTEXT), dtype=torch.int64)
    for r, row in enumerate(ids):
        padded[r, : len(row)] = torch.tensor(row)
    with torch.no_grad():
        text = model.get_text_features(input_ids=padded).pooler_output.numpy().astype(np.float32)
        image_syn = model.get_image_features(pixel_values=torch.from_numpy(synthetic_pixels(3)))
        image_syn = image_syn.pooler_output.numpy().astype(np.float32)
    with open(os.path.join(OUT, 'concepts.json'), 'w') as f:
        json.dump({'concepts': CONCEPTS, 'ids': ids}, f, ensure_ascii=False)
        f.write('\n')
    np.save(os.path.join(OUT, 'text_embeds.npy'), text)
    np.save(os.path.join(OUT, 'image_embeds_synthetic.npy'), image_syn)

    # Golden image embeddings of real files, preprocessed by transformers' PIL image processor.
    from PIL import Image
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    proc = CLIPImageProcessorPil(**{k: v for k, v in PREPROCESSOR.items() if k != 'feature_extractor_type'})
    images = [Image.open(os.path.join(IMAGES, f)).convert('RGB') for f in IMAGE_FILES]
    pixels = proc(images=images, return_tensors='pt')['pixel_values']
    assert tuple(pixels.shape) == (len(IMAGE_FILES), 3, 224, 224), pixels.shape
    with torch.no_grad():
        image_files = model.get_image_features(pixel_values=pixels.float()).pooler_output.numpy()
    np.save(os.path.join(OUT, 'image_embeds_files.npy'), image_files.astype(np.float32))

    # Check the exports against PyTorch with onnxruntime (unpadded ids, batch by batch).
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    ts = ort.InferenceSession(os.path.join(OUT, 'model', 'onnx', 'text_model.onnx'), so)
    vs = ort.InferenceSession(os.path.join(OUT, 'model', 'onnx', 'vision_model.onnx'), so)
    worst = 0.0
    for r, row in enumerate(ids):
        got = ts.run(['text_embeds'], {'input_ids': np.array([row], dtype=np.int64)})[0][0]
        worst = max(worst, float(np.abs(got - text[r]).max() / np.abs(text[r]).max()))
    got = vs.run(['image_embeds'], {'pixel_values': synthetic_pixels(3)})[0]
    worst_img = float(np.abs(got - image_syn).max() / np.abs(image_syn).max())
    got = vs.run(['image_embeds'], {'pixel_values': pixels.numpy().astype(np.float32)})[0]
    worst_img = max(worst_img, float(np.abs(got - image_files).max() / np.abs(image_files).max()))
    print(f'onnxruntime vs torch: text {worst:.2e}, image {worst_img:.2e} (relative max error)')
    for root, _, files in os.walk(OUT):
        for f in sorted(files):
            p = os.path.join(root, f)
            print(f'{os.path.relpath(p, ROOT)}: {os.path.getsize(p)} bytes')


if __name__ == '__main__':
    main()
