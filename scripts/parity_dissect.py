#!/usr/bin/env python3
"""Parity of `clip-dissect dissect` with a PyTorch reference at ViT-B/16 + ResNet-50 size (a dev tool).

    npx tsc -p tsconfig.json                 # the CLI under test is dist/
    python3 scripts/parity_dissect.py        # ~10-15 min on 2 cores; run it with nohup … &

The bar (the issue's): a ViT-B/16 CLIP with random weights in the HF layout and a torchvision ResNet-50 with
random weights, 120 mixed images, 3000 concepts: text features and image features match the reference within
cosine 0.99999, and descriptions.csv matches the reference's labels for >= 99% of neurons whose top-2 margin is
above 1e-4.

1. Builds `transformers.CLIPModel` with the ViT-B/16 configuration (vision 224/16, hidden 768, 12 layers,
   12 heads, mlp 3072; text vocab 49408, hidden 512, 12 layers, 8 heads, 77 positions; projection 512; text
   eos_token_id 2 so that pooling is at argmax(input_ids), as the OpenAI checkpoints) with transformers' random
   initialisation under `torch.manual_seed(0)`, and exports it in the transformers.js (Xenova) layout into
   WORK/clip/: onnx/text_model.onnx (input_ids [batch, sequence] -> text_embeds), onnx/vision_model.onnx
   (pixel_values [batch, 3, 224, 224] -> image_embeds), config.json, preprocessor_config.json (OpenAI CLIP:
   bicubic 224 on the shorter side, crop 224, CLIP mean/std) and the tokenizer files copied from
   ../shared/fixtures/clip-tokenizer/. Reused when WORK/clip/ is complete (`--reexport` forces it).
2. Target: parity_activations.build_model('resnet50') (random weights, seed 0, BatchNorm randomised) exported
   with `do_constant_folding=False`, so ONNX `conv1` is the PyTorch `conv1` output. Reuses
   /tmp/clip-dissect-parity-activations/resnet50_ts_nofold.onnx when it exists (same builder, same seeds).
   Probe: /tmp/clip-dissect-parity-activations/probe (120 mixed images written by parity_activations.py, made
   with parity_activations.make_probe when absent), copied to WORK/probe with the 10 images of
   test/fixtures/clip-preprocess/ added as the class `zz_odd_overhang` (8 of them have an odd resized overhang
   that torchvision's CenterCrop and Hugging Face's processors crop one pixel apart; none of the 120 has).
3. Reference (torch float32, CPU): text features = get_text_features of the concepts tokenized with the HF
   tokenizer from the same tokenizer.json (clip.tokenize's ids: start/end tokens, cut to 77 keeping the end
   token, zero padding). The padding goes to the longest concept of each length-sorted batch of 256 instead of
   77: the text tower is causal and pools at the end token, so tokens after it change nothing (`--pad77` pads to
   77 as clip.tokenize does, ~5x slower). Image features = get_image_features over
   torchvision ImageFolder(probe) (its pil_loader converts each image to RGB when it opens it) with exactly
   `clip.load`'s transform, clip/clip.py `_transform(224)`: Resize(224, bicubic), CenterCrop(224),
   _convert_image_to_rgb, ToTensor, Normalize(CLIP mean/std) (make_clip_preprocess_golden.clip_transform;
   never transformers' image processor). Activations = forward hooks on
   conv1, layer1..layer4 averaged over H, W (utils.get_activation), ImageNet transform (Resize 256 bilinear,
   CenterCrop 224). Labels = argmax of reference_similarity.soft_wpmi(clip_similarity(I, T), A) (default
   parameters), margin = top-1 minus top-2 score.
4. Runs `node bin/clip-dissect.js dissect` once (all 5 layers, fresh --cache-dir under WORK, -q) and compares:
   image order, min over rows of the cosine of text and image features (and over the odd-overhang images), per layer max |ours - ref| / s_k with
   s_k = max_i |ref[i, k]| (floored at 1e-6 max |ref|), and label agreement among neurons with reference margin
   > 1e-4 (per layer and total; all neurons for information).

Prints the table and writes it to bench/parity/dissect-vitb16-resnet50.txt (`--results FILE` elsewhere). Exit
status 1 when the bar fails, 2 when the CLI fails.
"""

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity_activations as pa  # noqa: E402  (applies the torchvision workaround, gives the probe + ResNet)
import reference_similarity as rs  # noqa: E402
from make_clip_preprocess_golden import OUT as ODD_OVERHANG  # noqa: E402
from make_clip_preprocess_golden import clip_transform  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision import datasets  # noqa: E402
from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast  # noqa: E402

T = pa.T
ROOT = pa.ROOT
CLI = pa.CLI
TOKENIZER = os.path.join(ROOT, '..', 'shared', 'fixtures', 'clip-tokenizer')
CONCEPTS = os.path.join(ROOT, '..', 'shared', 'data', 'concepts', '3k.txt')
CONTEXT = 77
BOS, EOS = 49406, 49407
LAYERS = ['conv1', 'layer1', 'layer2', 'layer3', 'layer4']
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
PREPROCESSOR = {
    'crop_size': 224, 'do_center_crop': True, 'do_normalize': True, 'do_resize': True,
    'feature_extractor_type': 'CLIPFeatureExtractor', 'image_mean': CLIP_MEAN, 'image_std': CLIP_STD,
    'resample': 3, 'size': 224,
}
COS_BAR = 0.99999
LABEL_BAR = 0.99
MARGIN = 1e-4


def build_clip():
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                         num_attention_heads=8, max_position_embeddings=CONTEXT, hidden_act='quick_gelu',
                         bos_token_id=0, eos_token_id=2, pad_token_id=1),
        vision_config=dict(image_size=224, patch_size=16, hidden_size=768, intermediate_size=3072,
                           num_hidden_layers=12, num_attention_heads=12, hidden_act='quick_gelu'),
        projection_dim=512,
    )
    config._attn_implementation = 'eager'
    return config, CLIPModel(config).eval()


def export_clip(config, model, out):
    os.makedirs(os.path.join(out, 'onnx'), exist_ok=True)
    cfg = config.to_dict()
    cfg.pop('transformers_version', None)
    with open(os.path.join(out, 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    with open(os.path.join(out, 'preprocessor_config.json'), 'w') as f:
        json.dump(PREPROCESSOR, f, indent=2)
    for name in os.listdir(TOKENIZER):
        if name.endswith('.json') and name != 'reference-ids.json':
            shutil.copy(os.path.join(TOKENIZER, name), os.path.join(out, name))

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

    ids = torch.tensor([[BOS, 320, 1929, EOS], [BOS, 1929, EOS, 0]], dtype=torch.int64)
    torch.onnx.export(Text(model), (ids,), os.path.join(out, 'onnx', 'text_model.onnx'),
                      input_names=['input_ids'], output_names=['text_embeds'],
                      dynamic_axes={'input_ids': {0: 'batch_size', 1: 'sequence_length'},
                                    'text_embeds': {0: 'batch_size'}},
                      opset_version=17, dynamo=False)
    px = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(5))
    torch.onnx.export(Vision(model), (px,), os.path.join(out, 'onnx', 'vision_model.onnx'),
                      input_names=['pixel_values'], output_names=['image_embeds'],
                      dynamic_axes={'pixel_values': {0: 'batch_size'}, 'image_embeds': {0: 'batch_size'}},
                      opset_version=17, dynamo=False)


def read_concepts(path):
    """As src/data/concepts.ts: split on LF, strip one CR, skip blank lines, first occurrence of duplicates."""
    with open(path, encoding='utf-8') as f:
        text = f.read().lstrip('\ufeff')
    seen, out = set(), []
    for line in text.split('\n'):
        line = line[:-1] if line.endswith('\r') else line
        if line.strip() == '' or line in seen:
            continue
        seen.add(line)
        out.append(line)
    return out


def text_reference(model, concepts, pad77, batch=256):
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(TOKENIZER, 'tokenizer.json'))
    ids = []
    for c in concepts:
        row = tok(c)['input_ids']
        assert row[0] == BOS and row[-1] == EOS, (c, row)
        if len(row) > CONTEXT:
            row = row[: CONTEXT - 1] + [EOS]
        ids.append(row)
    order = sorted(range(len(ids)), key=lambda r: len(ids[r]))
    feats = np.zeros((len(ids), model.config.projection_dim), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, len(order), batch):
            rows = order[s: s + batch]
            width = CONTEXT if pad77 else max(len(ids[r]) for r in rows)
            x = torch.zeros((len(rows), width), dtype=torch.int64)
            for j, r in enumerate(rows):
                x[j, : len(ids[r])] = torch.tensor(ids[r])
            feats[rows] = model.get_text_features(input_ids=x).pooler_output.numpy()
    return feats, max(len(r) for r in ids)


def image_reference(model, probe, batch=32):
    ds = datasets.ImageFolder(probe, transform=clip_transform(224))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=False, num_workers=0)
    out = []
    with torch.no_grad():
        for xb, _ in loader:
            out.append(model.get_image_features(pixel_values=xb).pooler_output)
    return ds, torch.cat(out).numpy().astype(np.float32)


def activation_reference(model, probe, batch=32):
    transform = T.Compose([
        T.Resize(256, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(224), T.ToTensor(),
        T.Normalize(pa.MEAN, pa.STD),
    ])
    ds = datasets.ImageFolder(probe, transform=transform)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=False, num_workers=0)
    named = dict(model.named_modules())
    acts = {m: [] for m in LAYERS}

    def hook_for(name):
        def hook(_m, _inp, output):
            acts[name].append(output.detach().mean(dim=[2, 3]))
        return hook

    handles = [named[m].register_forward_hook(hook_for(m)) for m in LAYERS]
    with torch.no_grad():
        for xb, _ in loader:
            model(xb)
    for h in handles:
        h.remove()
    return {m: torch.cat(v).numpy().astype(np.float32) for m, v in acts.items()}


def row_cos(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def rel_col(ours, ref):
    ours = ours.astype(np.float64)
    ref = ref.astype(np.float64)
    floor = max(1e-6 * float(np.abs(ref).max()), 1e-30)
    col = np.maximum(np.abs(ref).max(axis=0), floor)
    return float((np.abs(ours - ref) / col).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--work', default='/tmp/clip-dissect-parity-dissect')
    ap.add_argument('--probe', default='/tmp/clip-dissect-parity-activations/probe')
    ap.add_argument('--target', default='/tmp/clip-dissect-parity-activations/resnet50_ts_nofold.onnx')
    ap.add_argument('--concepts', default=CONCEPTS)
    ap.add_argument('--reexport', action='store_true', help='export the CLIP towers even if WORK/clip/ exists')
    ap.add_argument('--pad77', action='store_true', help='pad the reference token ids to 77 (slower)')
    ap.add_argument('--threads', type=int, default=0, help='torch threads (default: all cores)')
    ap.add_argument('--results', default=os.path.join(ROOT, 'bench', 'parity', 'dissect-vitb16-resnet50.txt'))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    lines = []

    def say(s=''):
        print(s, flush=True)
        lines.append(s)

    # inputs
    probe = os.path.abspath(args.probe)
    if not os.path.isdir(probe):
        probe = os.path.join(work, 'probe120')
        pa.make_probe(work, 120)
        shutil.move(os.path.join(work, 'probe'), probe)
    # the probe plus the odd-overhang fixture images (a class sorted last by ImageFolder and by clip-dissect)
    with_odd = os.path.join(work, 'probe')
    if probe != with_odd:
        shutil.rmtree(with_odd, ignore_errors=True)
        shutil.copytree(probe, with_odd)
    odd_dir = os.path.join(with_odd, 'zz_odd_overhang')
    shutil.rmtree(odd_dir, ignore_errors=True)
    os.makedirs(odd_dir)
    with open(os.path.join(ODD_OVERHANG, 'expected.json')) as f:
        odd = {e['image']: e for e in json.load(f)['images']}
    for name in odd:
        shutil.copy(os.path.join(ODD_OVERHANG, name), odd_dir)
    probe = with_odd
    resnet = pa.build_model('resnet50')
    target = os.path.abspath(args.target)
    if not os.path.isfile(target):
        target = os.path.join(work, 'resnet50_ts_nofold.onnx')
        x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(5))
        pa.etm.export(resnet, x, target, dynamo=False, do_constant_folding=False)
    config, clip = build_clip()
    clip_dir = os.path.join(work, 'clip')
    t0 = time.time()
    exported = False
    if args.reexport or not all(os.path.isfile(os.path.join(clip_dir, p)) for p in
                                ['onnx/text_model.onnx', 'onnx/vision_model.onnx', 'config.json',
                                 'preprocessor_config.json', 'tokenizer.json']):
        export_clip(config, clip, clip_dir)
        exported = True
    t_export = time.time() - t0
    concepts = read_concepts(args.concepts)

    # reference
    t0 = time.time()
    T_ref, longest = text_reference(clip, concepts, args.pad77)
    t_text = time.time() - t0
    t0 = time.time()
    ds, I_ref = image_reference(clip, probe)
    t_image = time.time() - t0
    t0 = time.time()
    A_ref = activation_reference(resnet, probe)
    t_act = time.time() - t0
    t0 = time.time()
    P = rs.clip_similarity(I_ref, T_ref)
    ref_labels, ref_margin, ref_top = {}, {}, {}
    for layer in LAYERS:
        score = rs.soft_wpmi(P, A_ref[layer])
        top2 = torch.topk(score, 2, dim=1).values
        ref_labels[layer] = torch.argmax(score, dim=1).numpy()
        ref_margin[layer] = (top2[:, 0] - top2[:, 1]).numpy()
        ref_top[layer] = top2[:, 0].numpy()
    t_sim = time.time() - t0
    t_ref = t_text + t_image + t_act + t_sim

    # ours
    out = os.path.join(work, 'out')
    cache = os.path.join(work, 'cache')
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    cmd = ['node', CLI, 'dissect', '--target', target, '--layers', ','.join(LAYERS), '--probe', probe,
           '--concepts', os.path.abspath(args.concepts), '--clip', clip_dir, '--out', out, '--cache-dir', cache, '-q']
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    t_ours = time.time() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(2)
    T_ours = np.load(os.path.join(out, 'text_features.npy'))
    I_ours = np.load(os.path.join(out, 'image_features.npy'))
    with open(os.path.join(out, 'images.txt')) as f:
        images = f.read().splitlines()
    ours_labels = {m: {} for m in LAYERS}
    with open(os.path.join(out, 'descriptions.csv'), newline='') as f:
        for row in csv.DictReader(f):
            if row['layer'] in ours_labels:
                ours_labels[row['layer']][int(row['unit'])] = (row['description'], float(row['similarity']))

    # table
    ok = True
    say(f'# clip-dissect dissect parity: ViT-B/16 CLIP (random, HF layout) + ResNet-50 (random), '
        f'{time.strftime("%Y-%m-%d")}')
    cpu = ''
    try:
        cpu = [ln.split(':', 1)[1].strip() for ln in subprocess.run(['lscpu'], capture_output=True, text=True)
               .stdout.splitlines() if ln.startswith('Model name')][0]
    except Exception:
        pass
    say(f'# {cpu}, {os.cpu_count()} cores; python {platform.python_version()}, torch {torch.__version__}; '
        f'node {subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()}')
    say(f'# command: {" ".join(cmd)}')
    say(f'# probe {probe}: {len(ds.samples)} images; concepts {args.concepts}: {len(concepts)} '
        f'(longest {longest} tokens; reference padding {"77" if args.pad77 else "to the longest of each batch"})')
    samples = [p for p, _ in ds.samples]
    same_order = images == samples
    ok &= same_order
    say(f'image order: images.txt {"==" if same_order else "!="} ImageFolder.samples ({len(images)} vs '
        f'{len(samples)})')
    say('')
    cos_t = row_cos(T_ours, T_ref) if T_ours.shape == T_ref.shape else np.array([-np.inf])
    cos_i = row_cos(I_ours, I_ref) if I_ours.shape == I_ref.shape and same_order else np.array([-np.inf])
    say(f'{"features":<10} {"shape":>12} {"min cos":>12} {"1-min cos":>10} {"bar":>8}  verdict')
    odd_rows = [i for i, p in enumerate(samples) if os.path.dirname(p) == odd_dir and
                odd[os.path.basename(p)]['offset']['openai'] != odd[os.path.basename(p)]['offset']['hf']]
    cos_odd = cos_i[odd_rows] if len(cos_i) == len(samples) else cos_i
    for name, c, shape in [('text', cos_t, T_ours.shape), ('image', cos_i, I_ours.shape),
                           (f'  odd ({len(odd_rows)})', cos_odd, I_ours[odd_rows].shape)]:
        good = float(c.min()) >= COS_BAR
        ok &= good
        say(f'{name:<10} {str(tuple(shape)):>12} {float(c.min()):>12.9f} {1 - float(c.min()):>10.2e} '
            f'{COS_BAR:>8}  {"ok" if good else "FAIL"}')
    say('')
    say(f'{"layer":<7} {"K":>5} {"act rel(col)":>12} {"margin>1e-4":>11} {"agree":>6} {"agree %":>8} '
        f'{"all agree":>10} {"max |sim diff|":>14}')
    tot_n = tot_a = tot_all = tot_k = 0
    for layer in LAYERS:
        a = np.load(os.path.join(out, f'{layer}.npy'))
        rc = rel_col(a, A_ref[layer]) if a.shape == A_ref[layer].shape else float('inf')
        K = len(ref_labels[layer])
        sel = ref_margin[layer] > MARGIN
        agree = np.array([ours_labels[layer].get(k, ('',))[0] == concepts[ref_labels[layer][k]] for k in range(K)])
        sim_diff = max(abs(ours_labels[layer][k][1] - float(ref_top[layer][k])) for k in range(K)
                       if k in ours_labels[layer]) if ours_labels[layer] else float('inf')
        n, na = int(sel.sum()), int(agree[sel].sum())
        tot_n += n
        tot_a += na
        tot_all += int(agree.sum())
        tot_k += K
        say(f'{layer:<7} {K:>5} {rc:>12.2e} {n:>11} {na:>6} {100 * na / max(n, 1):>7.2f}% '
            f'{int(agree.sum()):>5}/{K:<4} {sim_diff:>14.2e}')
    frac = tot_a / max(tot_n, 1)
    good = frac >= LABEL_BAR
    ok &= good
    say(f'{"total":<7} {tot_k:>5} {"":>12} {tot_n:>11} {tot_a:>6} {100 * frac:>7.2f}% {tot_all:>5}/{tot_k:<4}'
        f'   bar >= {100 * LABEL_BAR:.0f}%: {"ok" if good else "FAIL"}')
    say('')
    say(f'time  reference (torch, {torch.get_num_threads()} threads): {t_ref:.1f} s = text {t_text:.1f} + image '
        f'{t_image:.1f} + activations {t_act:.1f} + soft_wpmi x5 {t_sim:.1f}')
    say(f'time  clip-dissect dissect (one run, cold cache, all cores): {t_ours:.1f} s')
    say(f'time  (not counted) CLIP ONNX export: {t_export:.1f} s{"" if exported else " (reused " + clip_dir + ")"}')
    say(f'verdict: {"PASS" if ok else "FAIL"}')
    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    with open(args.results, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print(f'wrote {args.results}')
    raise SystemExit(0 if ok else 1)


if __name__ == '__main__':
    main()
