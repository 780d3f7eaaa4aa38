/**
 * Where a target network's files are: an `.onnx` file, a folder, or a Hugging Face hub id in the transformers.js
 * layout (`onnx/model.onnx` and its dtype variants `onnx/model_fp16.onnx`, `onnx/model_quantized.onnx`, …, their
 * external data `onnx/model.onnx_data`, `preprocessor_config.json` for the preprocessing, `config.json` whose
 * `id2label` names the classes), downloaded once into the cache like the CLIP models (./_hub.ts).
 */
import { platform } from '#platform';
import { isFile } from '../io/files.js';
import { ArgumentError, ClipDissectError, formatChoices } from '../numeric/errors.js';
import type { FileStat } from '../platform/types.js';
import { type HubOptions, isHubId, resolveModelFiles } from './_hub.js';
import { externalDataLocations } from './_onnx-external-data.js';

/**
 * Which ONNX weights of a hub target (the transformers.js file names): fp32 `model.onnx` (the reference), fp16
 * `model_fp16.onnx`, q8 `model_quantized.onnx`, int8 `model_int8.onnx`, uint8 `model_uint8.onnx`, q4
 * `model_q4.onnx`, q4f16 `model_q4f16.onnx`, bnb4 `model_bnb4.onnx`. Anything but fp32 is an approximation of
 * the network the labels are about.
 */
export type TargetDtype = 'fp32' | 'fp16' | 'q8' | 'int8' | 'uint8' | 'q4' | 'q4f16' | 'bnb4';
export const TARGET_DTYPES: readonly TargetDtype[] = [
  'fp32',
  'fp16',
  'q8',
  'int8',
  'uint8',
  'q4',
  'q4f16',
  'bnb4',
];
const SUFFIX: Readonly<Record<TargetDtype, string>> = {
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  int8: '_int8',
  uint8: '_uint8',
  q4: '_q4',
  q4f16: '_q4f16',
  bnb4: '_bnb4',
};

/** The model file of a dtype, relative to the model folder (`onnx/model_fp16.onnx`). */
export function targetModelFile(dtype: TargetDtype = 'fp32'): string {
  return `onnx/model${SUFFIX[dtype]}.onnx`;
}

export interface TargetSourceOptions
  extends Pick<
    HubOptions,
    'cacheDir' | 'offline' | 'fetch' | 'baseUrl' | 'revision' | 'token' | 'onProgress' | 'signal'
  > {
  /** Which weights of a folder or hub id in the transformers.js layout (default 'fp32'). */
  dtype?: TargetDtype;
}

export interface TargetSource {
  /** The ONNX model file. */
  readonly model: string;
  /** The folder's (or hub model's) preprocessor_config.json, when it has one. */
  readonly preprocessorConfig?: string;
  /** The folder's (or hub model's) config.json, when it has one (id2label: the class names). */
  readonly config?: string;
  /** The hub id and revision, for a hub target. */
  readonly hubId?: string;
  readonly revision?: string;
}

/**
 * Finds (or downloads) a target network's files. `target`: an .onnx file, a folder holding model.onnx or
 * onnx/model<suffix>.onnx (and preprocessor_config.json, config.json), or a hub id (`owner/name`) that is not a
 * local path. Errors: ArgumentError (nothing there, a folder without the model file), ClipDissectError from
 * the download ('ERR_MODEL_DOWNLOAD' naming the file and what to do, 'ERR_OFFLINE').
 */
export async function resolveTargetSource(
  target: string,
  options: TargetSourceOptions = {},
): Promise<TargetSource> {
  const dtype = options.dtype ?? 'fp32';
  if (!Object.hasOwn(SUFFIX, dtype))
    throw new ArgumentError(
      `the target dtype must be ${formatChoices(TARGET_DTYPES)} but got '${String(dtype)}'`,
    );
  const file = targetModelFile(dtype);
  let st: FileStat | null = null;
  let statError: (Error & { code?: string }) | null = null;
  try {
    st = await platform.files.stat(target);
  } catch (e) {
    statError = e as Error & { code?: string };
  }
  if (st === null) {
    if (isHubId(target)) return resolveHubTarget(target, file, options);
    throw new ArgumentError(
      `target model '${target}' cannot be read (${statError?.code ?? statError?.message}); expected an .onnx file, a folder holding model.onnx, or a Hugging Face model id such as 'Xenova/resnet-50'`,
    );
  }
  if (!st.isDirectory()) return { model: target };
  const candidates =
    dtype === 'fp32'
      ? [platform.paths.join(target, 'model.onnx'), platform.paths.join(target, file)]
      : [platform.paths.join(target, file)];
  let model: string | undefined;
  for (const c of candidates) {
    if (await isFile(c)) {
      model = c;
      break;
    }
  }
  if (!model)
    throw new ArgumentError(
      dtype === 'fp32'
        ? `target folder '${target}' holds neither model.onnx nor onnx/model.onnx; pass the .onnx file itself`
        : `target folder '${target}' has no ${file} (the ${dtype} weights); choose another target dtype or pass the .onnx file itself`,
    );
  const pc = platform.paths.join(target, 'preprocessor_config.json');
  const cfg = platform.paths.join(target, 'config.json');
  return {
    model,
    ...((await isFile(pc)) ? { preprocessorConfig: pc } : {}),
    ...((await isFile(cfg)) ? { config: cfg } : {}),
  };
}

async function resolveHubTarget(
  id: string,
  file: string,
  options: TargetSourceOptions,
): Promise<TargetSource> {
  const hub: HubOptions = { ...options, modelKind: 'target' };
  const meta = ['config.json', 'preprocessor_config.json'];
  const r = await resolveModelFiles(id, [...meta, file], { ...hub, optional: meta });
  const model = platform.paths.join(r.dir, file);
  // external data (onnx/model.onnx_data, …) is named inside the model file
  const locations = await externalDataLocations(model);
  const folder = platform.paths.dirname(file);
  if (locations.length > 0)
    await resolveModelFiles(
      id,
      locations.map((l) => `${folder}/${l.split(/[\\/]/).join('/')}`),
      hub,
    );
  return {
    model,
    ...(r.absent.includes('preprocessor_config.json')
      ? {}
      : { preprocessorConfig: platform.paths.join(r.dir, 'preprocessor_config.json') }),
    ...(r.absent.includes('config.json') ? {} : { config: platform.paths.join(r.dir, 'config.json') }),
    hubId: id,
    revision: r.revision,
  };
}

/**
 * The class names of a Hugging Face config.json (`id2label`, unit i = class i), or null when it has none or only
 * the placeholders transformers writes for unnamed classes (`LABEL_0`, `LABEL_1`, …).
 */
export async function readId2Label(configPath: string): Promise<string[] | null> {
  let json: unknown;
  try {
    json = JSON.parse(await platform.files.readText(configPath));
  } catch (e) {
    throw new ClipDissectError('ERR_MODEL_FILES', `cannot read ${configPath}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const map = (json as Record<string, unknown> | null)?.['id2label'];
  if (map === undefined || map === null) return null;
  if (typeof map !== 'object' || Array.isArray(map))
    throw new ClipDissectError(
      'ERR_MODEL_FILES',
      `${configPath}: 'id2label' must be an object {"0": "class name", …} but got ${JSON.stringify(map)}`,
    );
  const entries = Object.entries(map as Record<string, unknown>);
  const names: string[] = new Array(entries.length);
  for (const [k, v] of entries) {
    const i = Number(k);
    if (!/^(0|[1-9]\d*)$/.test(k) || i >= entries.length || typeof v !== 'string')
      throw new ClipDissectError(
        'ERR_MODEL_FILES',
        `${configPath}: 'id2label' must map the ids 0…${entries.length - 1} to class names but has ${JSON.stringify(k)}: ${JSON.stringify(v)}`,
      );
    names[i] = v;
  }
  if (names.every((n, i) => n === `LABEL_${i}`)) return null;
  return names;
}
