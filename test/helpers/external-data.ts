/** ONNX models re-saved with their weights in external-data files of any name (written with onnx-buf). */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as onnx from 'onnx-buf';

/**
 * Writes the model `src` as `<dir>/<name>` with the raw data of every float32 initializer of at least `minBytes` bytes
 * moved, one after the other, into the file that `location` names (relative to `dir`, written as given in the
 * tensors: `./x.bin` stays `./x.bin`). Returns the paths of the model and of the data file.
 */
export function saveWithExternalData(
  src: string,
  dir: string,
  name: string,
  location: string,
  minBytes = 256,
): { model: string; data: string } {
  const model = fromBinary(onnx.ModelProtoSchema, readFileSync(src));
  const entry = (key: string, value: string) => create(onnx.StringStringEntryProtoSchema, { key, value });
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataType !== onnx.TensorProto_DataType.FLOAT || t.rawData.length < minBytes) continue;
    chunks.push(t.rawData);
    t.externalData = [
      entry('location', location),
      entry('offset', String(offset)),
      entry('length', String(t.rawData.length)),
    ];
    t.dataLocation = onnx.TensorProto_DataLocation.EXTERNAL;
    offset += t.rawData.length;
    t.rawData = new Uint8Array(0);
  }
  if (chunks.length === 0) throw new Error(`${src} has no float32 initializer of ${minBytes} bytes or more`);
  const modelPath = join(dir, name);
  const dataPath = join(dir, location);
  mkdirSync(dirname(modelPath), { recursive: true });
  mkdirSync(dirname(dataPath), { recursive: true });
  writeFileSync(modelPath, toBinary(onnx.ModelProtoSchema, model));
  writeFileSync(dataPath, Buffer.concat(chunks));
  return { model: modelPath, data: dataPath };
}

/**
 * Changes the weights in a float32 external-data file in place (same size, same name): every value becomes
 * `v * scale + shift`.
 */
export function rewriteWeights(dataPath: string, scale = -1.5, shift = 0.01): void {
  const f = new Float32Array(Uint8Array.from(readFileSync(dataPath)).buffer);
  for (let i = 0; i < f.length; i++) f[i] = f[i] * scale + shift;
  writeFileSync(dataPath, new Uint8Array(f.buffer));
}
