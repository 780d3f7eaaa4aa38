// The library on the repository's tiny fixtures (README "Library"): run from the repository root with
// `node examples/library.mjs` after a build. It needs the CLIP tokenizer files of ../shared/fixtures.
import { copyFile, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipDissectError, dissect } from 'clip-dissect';
import { readNpy } from 'clip-dissect/io';

const work = await mkdtemp(join(tmpdir(), 'clip-dissect-example-'));
try {
  // a folder of the tiny random CLIP (test/fixtures/clip) with the OpenAI tokenizer files
  const clip = join(work, 'clip');
  await cp('test/fixtures/clip/model', clip, { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
    await copyFile(join('../shared/fixtures/clip-tokenizer', f), join(clip, f));
  const probe = join(work, 'probe');
  await mkdir(probe);
  for (const f of ['rgb420.jpg', 'rgb444.jpg', 'gray.png', 'palette.png', 'rgba.png', 'wide300x20.png'])
    await copyFile(join('test/fixtures/images', f), join(probe, f));
  const concepts = join(work, 'concepts.txt');
  await writeFile(concepts, 'dog\ncat\nbird\ncar\ntree\nwater\nsky\ngrass\n');

  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  const r = await dissect(
    {
      target: 'test/fixtures/models/resnet_small_ts.onnx',
      layers: ['layer4'],
      probe,
      concepts,
      clip,
      preprocess: 'test/fixtures/activations/preprocess.json',
      options: { topK: 3 },
      trust: false,
      cacheDir: join(work, 'cache'),
      out: join(work, 'out'),
    },
    {
      onProgress: (e) =>
        e.done === e.total && console.log(`progress: ${e.stage} ${e.done}/${e.total} ${e.unit ?? ''}`),
      onWarning: (w) => console.log(`warning: ${w}`),
      signal: ac.signal,
    },
  );
  const [layer] = r.layers;
  console.log(`${layer.layer}: ${layer.result.nNeurons} neurons over ${r.images.length} images`);
  for (let k = 0; k < 4; k++)
    console.log(
      `  neuron ${k}: ${layer.concepts[layer.result.labels[k]]} (${layer.result.scores[k].toFixed(4)})`,
    );
  const npy = await readNpy(join(work, 'out', 'layer4.npy'));
  console.log(`layer4.npy: ${npy.dtype} [${npy.shape.join(', ')}]`);
} catch (e) {
  if (!(e instanceof ClipDissectError)) throw e;
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
} finally {
  await rm(work, { recursive: true, force: true });
}
