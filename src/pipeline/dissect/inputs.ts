/**
 * dissect's first stage: the inputs that are cheap to check before anything is opened or computed — the
 * target's files and preprocessing, CLIP's files (offline errors name the missing file) and the concept set —
 * and the hashes of the model files, computed on a worker thread while the later stages open the target.
 */
import { platform } from '#platform';
import { BUILTIN_CONCEPT_SETS, loadConceptSet } from '../../data/builtin-concepts.js';
import { type ConceptSet, duplicateWarnings } from '../../data/concepts.js';
import type { PreprocessConfig } from '../../data/preprocess.js';
import { sha256Hex } from '../../io/sha256.js';
import { resolveModelFiles } from '../../models/_hub.js';
import { type ClipDtype, clipModelFiles, DEFAULT_CLIP_MODEL } from '../../models/onnx-clip-encoder.js';
import { readId2Label, resolveTargetSource, type TargetSource } from '../../models/target-files.js';
import { ArgumentError } from '../../numeric/errors.js';
import { resolvePreprocess } from '../activations.js';
import { fileSha256s, modelSha256s } from '../cache.js';
import {
  DEFAULT_CONCEPTS,
  DEFAULT_PROBE,
  type DissectHooks,
  type DissectOptions,
  type StageContext,
} from './options.js';

/** SHA-256 of CLIP's files (the towers with their external data files). */
export interface ClipHashes {
  config: string;
  tokenizer: string;
  tokenizerConfig: string;
  preprocessor: string;
  text: string;
  vision: string;
}

export interface DissectInputs {
  target: TargetSource;
  /** The target's preprocessing and where it came from. */
  pre: { config: PreprocessConfig; source: string };
  /** The classifier's class names (config.json's id2label), the ground truth of eval. */
  classNames: string[] | null;
  clip: {
    /** As given (or the default). */
    id: string;
    /** The folder holding its files. */
    dir: string;
    hubId?: string;
    dtype: ClipDtype;
    /** Its preprocessor_config.json. */
    preprocessorFile: string;
    /** Resolves once every file is hashed (rejections are handled: await it). */
    hashes: Promise<ClipHashes>;
  };
  /** The target model's SHA-256, hashed after CLIP's (one hashing thread at a time). */
  targetSha: Promise<string>;
  concepts: {
    /** As given (or the default). */
    name: string;
    set: ConceptSet;
    /** The texts embedded: the template applied to each concept. */
    texts: string[];
    sha256: string;
    /** For args.json: a concept file's absolute path, a built-in set's name. */
    source: string;
  };
}

/**
 * Resolves the target's and CLIP's files and loads the concept set; each default chosen goes to `onChoice`.
 * Errors: the loaders' (missing files, offline, ConceptSetError), ArgumentError for an empty concept set.
 */
export async function resolveDissectInputs(
  o: DissectOptions,
  cacheDir: string,
  ctx: StageContext,
  onChoice: DissectHooks['onChoice'],
): Promise<DissectInputs> {
  const dtype = o.dtype ?? 'fp32';
  const template = o.template ?? '{}';
  const clipId = o.clip ?? DEFAULT_CLIP_MODEL;
  const conceptsName = o.concepts ?? DEFAULT_CONCEPTS;
  const target = await resolveTargetSource(o.target, {
    cacheDir,
    offline: o.offline,
    revision: o.revision,
    dtype: o.targetDtype,
    onProgress: ctx.progress,
    signal: ctx.signal,
  });
  const pre = await resolvePreprocess(o.preprocess, target.preprocessorConfig);
  const classNames = target.config ? await readId2Label(target.config) : null;
  if (o.clip === undefined)
    onChoice?.({ option: 'clip', value: clipId, reason: 'ViT-B/16, as in the paper' });
  if (o.concepts === undefined)
    onChoice?.({
      option: 'concepts',
      value: conceptsName,
      reason: "the paper's 20,000 most common English words",
    });
  if (o.probe === undefined)
    onChoice?.({ option: 'probe', value: DEFAULT_PROBE, reason: 'the CIFAR-100 validation images' });
  const clipFiles = clipModelFiles(dtype);
  const { dir: clipDir, hubId } = await resolveModelFiles(clipId, clipFiles, {
    cacheDir,
    offline: o.offline,
    onProgress: ctx.progress,
    signal: ctx.signal,
  });
  const [configF, tokF, tokCfgF, preF, textF, visionF] = clipFiles.map((f) =>
    platform.paths.join(clipDir, f),
  );
  // hashed on a worker thread while this one opens the target; the towers with their external data files
  const hashes = (async (): Promise<ClipHashes> => {
    const [config, tokenizer, tokenizerConfig, preprocessor] = await fileSha256s([
      configF,
      tokF,
      tokCfgF,
      preF,
    ]);
    const [text, vision] = await modelSha256s([textF, visionF]);
    return { config, tokenizer, tokenizerConfig, preprocessor, text, vision };
  })();
  hashes.catch(() => undefined); // awaited later; no unhandled rejection meanwhile
  // after CLIP's files: one hashing thread at a time beside this one
  const targetSha = hashes.then(
    async () => (await modelSha256s([target.model]))[0],
    async () => (await modelSha256s([target.model]))[0],
  );
  targetSha.catch(() => undefined);

  const t = performance.now();
  const set: ConceptSet = await loadConceptSet(
    conceptsName,
    { cacheDir, offline: o.offline },
    { onProgress: ctx.progress, signal: ctx.signal },
  );
  for (const w of duplicateWarnings(set)) ctx.warn(w);
  if (set.concepts.length === 0) throw new ArgumentError(`the concept set ${conceptsName} holds no concepts`);
  const texts = set.concepts.map((c) => template.replace('{}', c));
  const conceptsSha = sha256Hex(JSON.stringify(set.concepts));
  // args.json records a concept file by its absolute path (so that eval / compose work from any folder); a
  // built-in set by its name (loadConceptSet reads a file of that name first, as here)
  const conceptIsFile =
    !Object.hasOwn(BUILTIN_CONCEPT_SETS, conceptsName) ||
    (await platform.files.stat(conceptsName).then(
      (st) => st.isFile(),
      () => false,
    ));
  const conceptSource = conceptIsFile ? platform.paths.resolve(conceptsName) : set.source;
  ctx.time('concepts', performance.now() - t);
  return {
    target,
    pre,
    classNames,
    clip: { id: clipId, dir: clipDir, hubId, dtype, preprocessorFile: preF, hashes },
    targetSha,
    concepts: { name: conceptsName, set, texts, sha256: conceptsSha, source: conceptSource },
  };
}
