/**
 * The external-data files of an ONNX model (internal): tensors whose `data_location` is EXTERNAL keep their
 * bytes in a file named by the `location` entry, relative to the model's folder (`model.onnx.data`,
 * `model.onnx_data`, `weights.bin`, `./x.bin`, `sub/w.bin`, …). One parser for every reader: the target model
 * loader, the weight reader and the feature cache's model hash. No onnxruntime here, so that the hashing worker
 * can load it.
 *
 * Locations are validated as onnxruntime does (relative, inside the model's folder) and normalised
 * (`./x.bin` → `x.bin`): onnxruntime looks in-memory external data up by the location as written but stores
 * the names it is given normalised, so `./x.bin` would never be found.
 */

import { fromBinary } from '@bufbuild/protobuf';
import * as onnx from 'onnx-buf';
import { platform } from '#platform';
import { ClipDissectError } from '../numeric/errors.js';

const { paths } = platform;

/** One tensor's external-data reference: the location as written, the byte offset, the length (-1: to EOF). */
export interface ExternalRef {
  location: string;
  offset: number;
  length: number;
}

/** A model's external-data file: its normalised location and its path. */
export interface ExternalFile {
  location: string;
  path: string;
}

/** The external-data reference of a tensor, or null when its data is inside the model. */
export function externalEntries(t: onnx.TensorProto): ExternalRef | null {
  if (t.dataLocation !== onnx.TensorProto_DataLocation.EXTERNAL) return null;
  const kv = new Map(t.externalData.map((e) => [e.key, e.value]));
  const location = kv.get('location') ?? '';
  const offset = Number(kv.get('offset') ?? '0');
  const length = kv.has('length') ? Number(kv.get('length')) : -1;
  return { location, offset, length };
}

/** Every tensor in the graph that may carry data: initializers and Constant values, subgraphs included. */
function* allTensors(g: onnx.GraphProto): Generator<onnx.TensorProto> {
  yield* g.initializer;
  for (const s of g.sparseInitializer) {
    if (s.values) yield s.values;
    if (s.indices) yield s.indices;
  }
  for (const n of g.node) yield* nodeTensors(n);
}

function* nodeTensors(n: onnx.NodeProto): Generator<onnx.TensorProto> {
  for (const a of n.attribute) {
    if (a.t) yield a.t;
    yield* a.tensors;
    if (a.g) yield* allTensors(a.g);
    for (const sub of a.graphs) yield* allTensors(sub);
  }
}

/** Every tensor of a model: its graph's (see allTensors) and those of its local functions. */
function* modelTensors(model: onnx.ModelProto): Generator<onnx.TensorProto> {
  if (model.graph) yield* allTensors(model.graph);
  for (const f of model.functions) for (const n of f.node) yield* nodeTensors(n);
}

/**
 * The external-data locations a parsed model references (main graph, subgraphs, local functions), validated
 * (relative, inside the model's folder) and rewritten to their normal form IN PLACE, each with the bytes read
 * from it, in order of first reference. The files need not exist.
 */
function referencedLocations(model: onnx.ModelProto, label: string): Map<string, number> {
  const needed = new Map<string, number>(); // normalised location → bytes needed
  for (const t of modelTensors(model)) {
    const e = externalEntries(t);
    if (!e) continue;
    const norm = paths.normalize(e.location);
    if (
      e.location === '' ||
      paths.isAbsolute(e.location) ||
      norm === '..' ||
      norm.startsWith(`..${paths.sep}`)
    )
      throw new ClipDissectError(
        'ERR_MODEL_EXTERNAL_DATA',
        `tensor '${t.name}' of ${label} has external data location '${e.location}'; it must be a path relative to the model's folder, inside it`,
      );
    if (norm !== e.location) for (const kv of t.externalData) if (kv.key === 'location') kv.value = norm;
    const end = e.length >= 0 ? e.offset + e.length : e.offset;
    needed.set(norm, Math.max(needed.get(norm) ?? 0, end));
  }
  return needed;
}

/**
 * The external-data files (normalised locations, relative to the model's folder) that an ONNX model file
 * references, read from the model alone: a hub download fetches them next.
 */
export async function externalDataLocations(modelPath: string): Promise<string[]> {
  const label = `ONNX model '${modelPath}'`;
  let bytes: Uint8Array;
  try {
    bytes = await platform.files.readFile(modelPath);
  } catch (e) {
    throw new ClipDissectError('ERR_MODEL_NOT_FOUND', `cannot read ${label}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return [...referencedLocations(parseOnnxModel(bytes, label), label).keys()];
}

/**
 * Checks every external-data reference of a parsed model (main graph, subgraphs, local functions): the
 * location must be relative and stay inside the model's folder, and the file must exist and be long enough.
 * Rewrites each location to its normal form IN PLACE (so that models serialised from it name the files as
 * onnxruntime stores them) and returns the files in order of first reference. `label` names the model in
 * errors (ClipDissectError 'ERR_MODEL_EXTERNAL_DATA').
 */
export async function externalDataFiles(
  modelPath: string,
  model: onnx.ModelProto,
  label = `ONNX model '${modelPath}'`,
): Promise<ExternalFile[]> {
  const dir = paths.dirname(modelPath);
  const needed = referencedLocations(model, label);
  const files: ExternalFile[] = [];
  for (const [location, end] of needed) {
    const path = paths.join(dir, location);
    const st = await platform.files.stat(path).catch(() => null);
    if (!st?.isFile())
      throw new ClipDissectError(
        'ERR_MODEL_EXTERNAL_DATA',
        `${label} keeps its weights in '${location}', but '${path}' ${st ? 'is not a file' : 'does not exist'}; copy it next to the model (the exporter writes it beside the .onnx file)`,
      );
    if (st.size < end)
      throw new ClipDissectError(
        'ERR_MODEL_EXTERNAL_DATA',
        `external data file '${path}' of ${label} has ${st.size} bytes but the model reads up to byte ${end}; it does not belong to this model or is truncated`,
      );
    files.push({ location, path });
  }
  return files;
}

/** Parses a model file's bytes (ClipDissectError 'ERR_MODEL_FORMAT' when they are not an ONNX model). */
export function parseOnnxModel(bytes: Uint8Array, label: string): onnx.ModelProto {
  try {
    return fromBinary(onnx.ModelProtoSchema, bytes);
  } catch (e) {
    throw new ClipDissectError(
      'ERR_MODEL_FORMAT',
      `${label} is not an ONNX model (protobuf parse failed: ${(e as Error).message})`,
      { cause: e },
    );
  }
}
