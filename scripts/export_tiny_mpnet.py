#!/usr/bin/env python3
"""A tiny random-weight MPNet sentence encoder in the transformers.js (Xenova/all-mpnet-base-v2) layout, and
golden sentence embeddings computed the sentence-transformers way, for src/models/onnx-sentence-encoder.ts
(a dev tool; the tests never run Python).

    python3 -m pip install torch transformers tokenizers onnx onnxruntime numpy
    python3 scripts/export_tiny_mpnet.py            # (re)writes test/fixtures/mpnet/

Everything is built offline: the tokenizer is a WordPiece tokenizer of the same kind as all-mpnet-base-v2's
(BertNormalizer lower-casing, BertPreTokenizer, WordPiece with '##' continuations, '<s> $A </s>' around every
text, MPNet's special tokens at ids 0-3), its vocabulary trained here on the inline CORPUS; the model is
transformers' MPNetModel with a tiny configuration and random weights (seed 0). Writes to test/fixtures/mpnet/:

    model/config.json                the MPNetConfig
    model/tokenizer.json             the tokenizer (Hugging Face tokenizers format)
    model/tokenizer_config.json      MPNetTokenizer settings (special tokens, lower case, model_max_length)
    model/onnx/model.onnx            input_ids, attention_mask int64 [batch, sequence] -> last_hidden_state
                                     float32 [batch, sequence, 16]
    golden.json                      the golden texts, their token ids (with <s> and </s>, cut to MAX_LEN)
    embeddings.npy                   sentence embeddings of the texts: mean of last_hidden_state over the
                                     attention mask, then L2-normalised (sentence-transformers' Pooling +
                                     Normalize modules), computed in torch on batches padded to their longest
                                     text as sentence-transformers does; float32
    embeddings_max8.npy              the same with the texts cut to 8 tokens (truncation test)
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
    # imports it, and needs none of them here (as in export_tiny_clip.py).
    for name in [k for k in sys.modules if k.startswith('torchvision')]:
        del sys.modules[name]
    sys.modules['torchvision._meta_registrations'] = types.ModuleType('torchvision._meta_registrations')
    try:
        import torchvision  # noqa: F401
    except Exception:
        pass

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import MPNetConfig, MPNetModel, PreTrainedTokenizerFast  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'mpnet')
MAX_LEN = 384  # sentence-transformers' max_seq_length of all-mpnet-base-v2
SPECIALS = ['<s>', '<pad>', '</s>', '<unk>', '[UNK]', '<mask>']

CORPUS = """
tench goldfish great white shark tiger shark hammerhead electric ray stingray cock hen ostrich brambling
goldfinch house finch junco indigo bunting robin bulbul jay magpie chickadee water ouzel kite bald eagle vulture
great grey owl fire salamander common newt eft spotted salamander axolotl bullfrog tree frog tailed frog
loggerhead leatherback turtle mud turtle terrapin box turtle banded gecko common iguana american chameleon
a photo of a dog a picture of a cat traffic light red car blue sky green grass running water snowy mountain
the quick brown fox jumps over the lazy dog striped zebra spotted leopard wooden table metal chair glass window
airplane wing over the mountains at sunset fire hydrant ice cream birthday cake hot air balloon sailing boat
texture pattern color shape object scene part material dotted striped checkered woven scaly furry shiny
""".split('\n')

TEXTS = [
    'dog',
    'a photo of a cat',
    'tench, Tinca tinca',
    'great white shark, white shark, man-eater',
    'Traffic Light',
    'zebra!',
    'xylophone quartet',  # words outside the vocabulary: word pieces and [UNK]
    'ice cream',
    'airplane wing over the mountains at sunset',
    ' '.join(['striped zebra'] * 10),  # 20 words: cut by the 8-token case
    'hot air balloon',
    'a',
]


def build_tokenizer():
    tok = Tokenizer(models.WordPiece(unk_token='[UNK]', continuing_subword_prefix='##', max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix='##')
    trainer = trainers.WordPieceTrainer(vocab_size=400, special_tokens=SPECIALS, continuing_subword_prefix='##')
    tok.train_from_iterator([line for line in CORPUS if line.strip()] * 3, trainer)
    assert [tok.token_to_id(t) for t in SPECIALS[:4]] == [0, 1, 2, 3]
    tok.post_processor = processors.TemplateProcessing(
        single='<s> $A </s>', pair='<s> $A </s> </s> $B </s>', special_tokens=[('<s>', 0), ('</s>', 2)]
    )
    return tok


def embed(model, batches_ids, dim):
    """sentence-transformers' pipeline on pre-tokenized ids: pad each batch to its longest, run the model, mean
    over the attention mask (clamped at 1e-9), L2 normalise."""
    out = []
    for ids in batches_ids:
        n = max(len(r) for r in ids)
        input_ids = torch.full((len(ids), n), 1, dtype=torch.int64)  # <pad> = 1
        mask = torch.zeros((len(ids), n), dtype=torch.int64)
        for i, r in enumerate(ids):
            input_ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        with torch.no_grad():
            h = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, p=2, dim=1))
    e = torch.cat(out).numpy().astype(np.float32)
    assert e.shape[1] == dim
    return e


def cut(ids, n):
    return ids if len(ids) <= n else ids[: n - 1] + [ids[-1]]


def main():
    torch.manual_seed(0)
    os.makedirs(os.path.join(OUT, 'model', 'onnx'), exist_ok=True)
    tok = build_tokenizer()
    tok.save(os.path.join(OUT, 'model', 'tokenizer.json'))
    tok_config = {
        'bos_token': '<s>',
        'cls_token': '<s>',
        'do_lower_case': True,
        'eos_token': '</s>',
        'mask_token': '<mask>',
        'model_max_length': 512,
        'pad_token': '<pad>',
        'sep_token': '</s>',
        'strip_accents': None,
        'tokenize_chinese_chars': True,
        'tokenizer_class': 'MPNetTokenizer',
        'unk_token': '[UNK]',
    }
    with open(os.path.join(OUT, 'model', 'tokenizer_config.json'), 'w') as f:
        json.dump(tok_config, f, indent=2)
        f.write('\n')

    config = MPNetConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=514,
        relative_attention_num_buckets=32,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    model = MPNetModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.3)
        model.embeddings.word_embeddings.weight.normal_(0, 1.0)
    cfg = config.to_dict()
    cfg.pop('transformers_version', None)
    cfg['architectures'] = ['MPNetModel']
    with open(os.path.join(OUT, 'model', 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write('\n')

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ex_ids = torch.tensor([[0, 5, 6, 2], [0, 7, 2, 1]], dtype=torch.int64)
    ex_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.int64)
    path = os.path.join(OUT, 'model', 'onnx', 'model.onnx')
    torch.onnx.export(
        Wrap(model).eval(),  # the export restores the wrapper's mode: a training-mode wrapper would turn dropout on
        (ex_ids, ex_mask),
        path,
        input_names=['input_ids', 'attention_mask'],
        output_names=['last_hidden_state'],
        dynamic_axes={
            'input_ids': {0: 'batch_size', 1: 'sequence_length'},
            'attention_mask': {0: 'batch_size', 1: 'sequence_length'},
            'last_hidden_state': {0: 'batch_size', 1: 'sequence_length'},
        },
        opset_version=17,
        dynamo=False,
    )

    model.eval()
    # token ids through transformers (the fast tokenizer over the same tokenizer.json), as sentence-transformers
    fast = PreTrainedTokenizerFast(tokenizer_file=os.path.join(OUT, 'model', 'tokenizer.json'), **{
        k: v for k, v in tok_config.items() if k.endswith('_token')
    })
    ids = [fast(t, truncation=True, max_length=MAX_LEN)['input_ids'] for t in TEXTS]
    ids8 = [fast(t, truncation=True, max_length=8)['input_ids'] for t in TEXTS]
    assert ids8 == [cut(r, 8) for r in ids], 'truncation keeps </s> last'
    assert all(r[0] == 0 and r[-1] == 2 for r in ids)
    # batches of 5 texts, padded to their longest, as in sentence-transformers' encode(batch_size=5)
    batches = [ids[i : i + 5] for i in range(0, len(ids), 5)]
    emb = embed(model, batches, 16)
    emb8 = embed(model, [ids8[i : i + 5] for i in range(0, len(ids8), 5)], 16)
    # one text at a time, unpadded: padding must not change the embedding (beyond float rounding)
    single = embed(model, [[r] for r in ids], 16)
    print(f'padded vs unpadded: {np.abs(single - emb).max():.2e}')
    np.save(os.path.join(OUT, 'embeddings.npy'), emb)
    np.save(os.path.join(OUT, 'embeddings_max8.npy'), emb8)
    with open(os.path.join(OUT, 'golden.json'), 'w') as f:
        json.dump({'texts': TEXTS, 'ids': ids, 'ids_max8': ids8}, f, ensure_ascii=False)
        f.write('\n')

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(path, so)
    worst = 0.0
    for r, row in enumerate(ids):
        h = s.run(['last_hidden_state'], {
            'input_ids': np.array([row], dtype=np.int64),
            'attention_mask': np.ones((1, len(row)), dtype=np.int64),
        })[0][0]
        v = h.mean(0)
        v = v / np.linalg.norm(v)
        worst = max(worst, float(np.abs(v - emb[r]).max()))
    print(f'onnxruntime vs torch: {worst:.2e} (max abs error of normalised embeddings)')
    for root, _, files in os.walk(OUT):
        for f in sorted(files):
            p = os.path.join(root, f)
            print(f'{os.path.relpath(p, ROOT)}: {os.path.getsize(p)} bytes')


if __name__ == '__main__':
    main()
