/**
 * Pins the public API: the exact names of the package's entry point and of its subpath exports, so that an
 * addition or a removal is a deliberate change of this file. The subpaths are imported through the package's
 * own name (Node's self-reference via package.json `exports`), as a user's code imports them.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as {
  name: string;
  exports: Record<string, { types: string; default: string }>;
};

/** The runtime names of each entry point, sorted. */
const EXPECTED: Record<string, string[]> = {
  '.': [
    'ArgumentError',
    'BUILTIN_CONCEPT_NAMES',
    'BUILTIN_PROBE_DATASETS',
    'CACHE_KINDS',
    'CLIP_PREPROCESS',
    'ClipDissectError',
    'ConceptSetError',
    'DEFAULT_CLIP_MODEL',
    'DEFAULT_CONCEPTS',
    'DEFAULT_MEMORY_BUDGET',
    'DEFAULT_PROBE',
    'DEFAULT_SENTENCE_MODEL',
    'IMAGENET_PREPROCESS',
    'LabelsFileError',
    'NonFiniteError',
    'NpyFormatError',
    'ProbeDatasetError',
    'RESULTS_SCHEMA_VERSION',
    'ShapeError',
    'TRUST_DEFAULTS',
    'VERSION',
    'analyseWeights',
    'buildReport',
    'cleanCache',
    'composeConcepts',
    'computeLayerTrust',
    'computeSimilarity',
    'createMatrix',
    'createOnnxClipEncoder',
    'createOnnxSentenceEncoder',
    'createOnnxTargetModel',
    'defaultCacheDir',
    'descriptionsCsv',
    'dissect',
    'evaluate',
    'extractActivations',
    'loadConceptSet',
    'neuronsJson',
    'openProbeDataset',
    'parseConcepts',
    'readArgsJson',
    'readDescriptionsCsv',
    'readImagesTxt',
    'readNeuronsJson',
    'resolveTargetSource',
    'runSanity',
    'scanCache',
    'scoreLabels',
    'selectRuntime',
    'topLevelBlocks',
    'verifyCache',
  ],
  './numeric': [
    'ArgumentError',
    'ClipDissectError',
    'METRIC_NAMES',
    'NonFiniteError',
    'SIMILARITY_DEFAULTS',
    'SIMILARITY_NAMES',
    'ShapeError',
    'averagePrecision',
    'clipSimilarities',
    'columnTopK',
    'correlation',
    'cosine',
    'createMatrix',
    'deadNeurons',
    'f1',
    'iou',
    'labelMetrics',
    'mean',
    'pearson',
    'pearsonPValue',
    'rankOf',
    'resolveSimilarityOptions',
    'rocAuc',
    'rowCosines',
    'similarityReference',
    'targetRanks',
    'topK',
    'topKAccuracy',
    'transpose',
    'upperMedian',
  ],
  './io': [
    'NpyFormatError',
    'encodeNpy',
    'matrixToNpy',
    'npyToMatrix',
    'parseNpy',
    'readNpy',
    'writeFileAtomic',
    'writeNpy',
  ],
  './data': [
    'CLIP_PREPROCESS',
    'IMAGENET_PREPROCESS',
    'LabelsFileError',
    'RESAMPLE_FILTERS',
    'decodeImageRGB',
    'preprocessImage',
    'preprocessShape',
    'preprocessorConfigFromHF',
    'readClassNames',
    'readMethodLabels',
    'resizeRGB',
    'resizedSize',
    'supportedImageFormats',
  ],
};

/** The type-only names of each entry point (they leave no runtime name): read from its .d.ts. */
const EXPECTED_TYPES: Record<string, string[]> = {
  '.': [
    'AccuracyScores',
    'ActivationsResult',
    'ArgsLayer',
    'CacheEntry',
    'CacheKind',
    'CacheStats',
    'CleanOptions',
    'CleanResult',
    'CleanSelection',
    'ClipDtype',
    'ClipEncoder',
    'ClipPreprocess',
    'ClipTowers',
    'ComposeCandidate',
    'ComposeOptions',
    'ComposeResult',
    'ComposeUnit',
    'ConceptSet',
    'CosSimilarityCubedOptions',
    'DescriptionRow',
    'DissectArgs',
    'DissectChoice',
    'DissectHooks',
    'DissectOptions',
    'DissectResult',
    'DissectTrustOptions',
    'EncodeSentencesOptions',
    'EncodeTextOptions',
    'EvalOptions',
    'EvalResult',
    'ExtractActivationsOptions',
    'LabelMetrics',
    'LayerActivations',
    'LayerInfo',
    'LayerKind',
    'LayerResult',
    'LayerSelection',
    'LayerTrust',
    'LayerTrustSummary',
    'LoadConceptsOptions',
    'Matrix',
    'MethodScores',
    'MethodTrust',
    'NeuronRecord',
    'NeuronTrust',
    'NeuronsJson',
    'NeuronsLayer',
    'OnnxClipEncoder',
    'OnnxClipEncoderOptions',
    'OnnxSentenceEncoder',
    'OnnxSentenceEncoderOptions',
    'OnnxTargetModel',
    'OnnxTargetModelOptions',
    'PoolMode',
    'PreprocessConfig',
    'ProbeDataset',
    'ProbeImage',
    'ProgressCallback',
    'ProgressEvent',
    'RGBImage',
    'RankReorderOptions',
    'RecoveryRow',
    'ReportOptions',
    'ReportResult',
    'ResultsArgs',
    'RunHooks',
    'RuntimeChoice',
    'RuntimeInfo',
    'SanityOptions',
    'SanityResult',
    'SanityTestRow',
    'ScoreOptions',
    'ScoreResult',
    'SentenceDtype',
    'SentenceEmbeddings',
    'SentenceEncoder',
    'SimilarityArgs',
    'SimilarityInputs',
    'SimilarityName',
    'SimilarityOptionsMap',
    'SimilarityResult',
    'SimilarityRunOptions',
    'SkippedImage',
    'SoftWpmiOptions',
    'TargetDtype',
    'TargetModel',
    'TargetSource',
    'TargetSourceOptions',
    'TextEmbedder',
    'TextEmbeddings',
    'TokenLayout',
    'TokenMode',
    'TrustBadge',
    'TrustInputs',
    'TrustOptions',
    'VerifyOptions',
    'VerifyResult',
    'VerifyStatus',
    'WeightEntry',
    'WeightTextSpace',
    'WeightsOptions',
    'WeightsResult',
    'WpmiOptions',
  ],
  './numeric': [
    'CosSimilarityCubedOptions',
    'LabelMetrics',
    'Matrix',
    'PearsonResult',
    'RankReorderOptions',
    'SimilarityInputs',
    'SimilarityName',
    'SimilarityOptionsMap',
    'SoftWpmiOptions',
    'WpmiOptions',
  ],
  './io': ['NpyArray', 'NpyDType', 'WriteFileAtomicOptions'],
  './data': ['LabelsLayout', 'MethodLabels', 'PreprocessConfig', 'RGBImage', 'ResampleFilter'],
};

const specifier = (sub: string) => (sub === '.' ? pkg.name : `${pkg.name}${sub.slice(1)}`);

describe('public API', () => {
  it('package.json exports exactly the pinned entry points, each with its files', () => {
    assert.deepEqual(Object.keys(pkg.exports).sort(), Object.keys(EXPECTED).sort());
    for (const [sub, target] of Object.entries(pkg.exports)) {
      assert.ok(existsSync(`${ROOT}${target.default}`), `${sub}: ${target.default} is missing`);
      assert.ok(existsSync(`${ROOT}${target.types}`), `${sub}: ${target.types} is missing`);
    }
  });

  it('dist/src/index.js exports exactly the pinned names', async () => {
    const m = await import('../../src/index.js');
    assert.deepEqual(Object.keys(m).sort(), EXPECTED['.']);
  });

  for (const sub of Object.keys(EXPECTED)) {
    it(`'${specifier(sub)}' resolves through the package name and exports exactly the pinned names`, async () => {
      const m = (await import(specifier(sub))) as Record<string, unknown>;
      assert.deepEqual(Object.keys(m).sort(), EXPECTED[sub]);
      for (const name of EXPECTED[sub])
        assert.notEqual(m[name], undefined, `${specifier(sub)}: ${name} is undefined`);
      // the file the package name resolves to is the one package.json names
      assert.equal(
        fileURLToPath(import.meta.resolve(specifier(sub))),
        fileURLToPath(new URL(pkg.exports[sub].default, `file://${ROOT}`)),
      );
    });
  }

  it('the declarations export exactly the pinned type names besides the runtime ones', () => {
    for (const [sub, target] of Object.entries(pkg.exports)) {
      const dts = readFileSync(`${ROOT}${target.types}`, 'utf8');
      const declared = [...dts.matchAll(/export (?:type )?\{([^}]*)\}/g)].flatMap((m) =>
        m[1]
          .split(',')
          .map((n) => n.trim().replace(/^type /, ''))
          .filter((n) => n !== ''),
      );
      assert.deepEqual([...declared].sort(), [...EXPECTED[sub], ...EXPECTED_TYPES[sub]].sort(), sub);
    }
  });

  it('internal modules are not reachable through the package name', async () => {
    for (const internal of ['dist/src/pipeline/cache.js', 'dist/src/numeric/stats.js', 'pipeline']) {
      await assert.rejects(import(`${pkg.name}/${internal}`), { code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
    }
  });
});
