/**
 * A target network exported to ONNX from PyTorch (either exporter), run with onnxruntime-node.
 *
 * Layers are named like the PyTorch modules (see _module-tree.ts); raw ONNX tensor names work too. The chosen
 * tensors are exposed as extra graph outputs and pooled inside the graph (ReduceMean / ReduceMax over H×W,
 * the class token or the token mean for transformer sequences), so only K numbers per image and layer leave
 * onnxruntime. Shapes come from the model's value_info (the dynamo exporter writes it) or, when missing (the
 * TorchScript exporter writes none), from a probe run at batch sizes 1 and 2, which also tells which axis is the
 * batch axis (e.g. [T, B, C] sequence-first outputs).
 */
import { ArgumentError, ClipDissectError, formatChoices, ShapeError } from '../numeric/errors.js';
import type { Matrix } from '../numeric/matrix.js';
import type { RunHooks } from '../progress.js';
import { checkDeviceOption, checkThreads, type Device, type SessionConfig } from '../runtime/index.js';
import { analyseModules, type FoldedBatchNorm, type ModuleAnalysis } from './_module-tree.js';
import {
  checkDevice,
  type DeclaredType,
  declaredTypes,
  FLOAT_DTYPES,
  graphView,
  type LoadedModel,
  loadOnnxModel,
  type PooledOutput,
  pooledModel,
  probeModel,
  type Reduction,
  shapeInferenceModel,
  TargetSession,
  withSession,
} from './_onnx-graph-edit.js';
import { openUnder } from './_open-hooks.js';
import { checkRunBatchSize, runBatchFor } from './_run-batch.js';
import {
  type LayerInfo,
  type LayerKind,
  type LayerSelection,
  POOL_MODES,
  type PoolMode,
  resolveLayers,
  type TargetModel,
  TOKEN_MODES,
  type TokenMode,
} from './target-model.js';

export type TokenLayout = 'auto' | 'batch-first' | 'sequence-first';
const TOKEN_LAYOUTS: readonly TokenLayout[] = ['auto', 'batch-first', 'sequence-first'];

export interface OnnxTargetModelOptions {
  /** Execution provider; 'cuda' needs onnxruntime-node's CUDA build. Default 'cpu'. */
  device?: Device;
  /** onnxruntime intra-op threads; default: all cores. */
  threads?: number;
  /** 4-D activations (and a 4-D image input whose last axis is 1 or 3) are NHWC. Default false (NCHW). */
  channelsLast?: boolean;
  /** How 3-D token outputs ([B, T, C]) become one vector per image: token 0 ('cls', default) or the mean. */
  token?: TokenMode;
  /**
   * Where the batch axis of 3-D outputs is: 'auto' (default) finds it (symbolic batch in value_info, or the axis
   * that follows the batch size in the probe) and falls back to batch-first; the others force it where it cannot
   * be found (models exported with a fixed batch size).
   */
  tokenLayout?: TokenLayout;
  /** Image height and width for models exported with symbolic spatial dims. */
  imageSize?: number | readonly [number, number];
  /** The image input, when the model has several inputs. */
  inputName?: string;
  /**
   * Images per onnxruntime run: activations() splits bigger batches. Default 8 on the CPU (bigger runs are
   * slower there: activations fall out of the caches), the whole batch on CUDA. Models exported with a fixed
   * batch size always run that many.
   */
  runBatchSize?: number;
}

const BATCH = 'batch';

interface TensorShape {
  readonly dtype: string;
  /** Per-image dims with the batch axis as 'batch'; null entries are unknown. */
  readonly shape: readonly (number | string | null)[];
  /** Index of the batch axis; null when the batch is folded into another axis or cannot be found. */
  readonly batchAxis: number | null;
}

interface LayerPlan {
  readonly info: LayerInfo;
  readonly rank: number;
  readonly isFloat32: boolean;
}

function checkOptions(options: OnnxTargetModelOptions): void {
  if (typeof options !== 'object' || options === null)
    throw new ArgumentError(
      `'options' must be an object but got ${options === null ? 'null' : typeof options}`,
    );
  checkDeviceOption(options.device);
  checkThreads(options.threads);
  if (options.token !== undefined && !TOKEN_MODES.includes(options.token))
    throw new ArgumentError(`'token' must be ${formatChoices(TOKEN_MODES)} but got '${options.token}'`);
  if (options.tokenLayout !== undefined && !TOKEN_LAYOUTS.includes(options.tokenLayout))
    throw new ArgumentError(
      `'tokenLayout' must be ${formatChoices(TOKEN_LAYOUTS)} but got '${options.tokenLayout}'`,
    );
  checkRunBatchSize(options.runBatchSize);
  if (options.channelsLast !== undefined && typeof options.channelsLast !== 'boolean')
    throw new ArgumentError(`'channelsLast' must be true or false but got ${String(options.channelsLast)}`);
  if (options.imageSize !== undefined) {
    const s = options.imageSize;
    const ok =
      (typeof s === 'number' && Number.isInteger(s) && s > 0) ||
      (Array.isArray(s) && s.length === 2 && s.every((v) => Number.isInteger(v) && v > 0));
    if (!ok)
      throw new ArgumentError(
        `'imageSize' must be a positive integer or [height, width] but got ${JSON.stringify(s)}`,
      );
  }
}

/**
 * Opens an ONNX target network. The model file may keep its weights in external data files next to it
 * (`model.onnx.data`). Throws ClipDissectError 'ERR_CUDA_UNAVAILABLE' for device 'cuda' without the CUDA build
 * of onnxruntime-node, 'ERR_MODEL_*' for unreadable models. Hooks: `onWarning` hears each of the model's
 * `warnings` (folded BatchNorms, no module names) once it is open; `signal` stops the opening between its
 * steps (reading, probing), and the promise rejects with the signal's reason.
 */
export async function createOnnxTargetModel(
  path: string,
  options: OnnxTargetModelOptions = {},
  hooks: RunHooks = {},
): Promise<OnnxTargetModel> {
  if (typeof path !== 'string' || path.length === 0)
    throw new ArgumentError(`'path' must be the path of an .onnx file but got ${JSON.stringify(path)}`);
  checkOptions(options);
  const model = await openUnder(hooks.signal, async () => {
    const loaded = await loadOnnxModel(path);
    hooks.signal?.throwIfAborted();
    const config: SessionConfig = { device: options.device ?? 'cpu', threads: options.threads };
    const m = new OnnxTargetModel(loaded, options, config);
    await m.init();
    return m;
  });
  for (const w of model.warnings) hooks.onWarning?.(w);
  return model;
}

export class OnnxTargetModel implements TargetModel {
  readonly inputShape: readonly [number, number, number];
  readonly warnings: string[] = [];
  /** Which PyTorch exporter wrote the model, as far as its node names and metadata tell. */
  readonly exporter: 'torchscript' | 'dynamo' | 'unknown';

  private readonly inputName: string;
  private readonly inputNHWC: boolean;
  /** The input's batch size when it is fixed at export; null when symbolic. */
  private readonly fixedBatch: number | null;
  /** Images per run when the batch is symbolic. */
  private readonly runBatch: number;
  private readonly channelsLast: boolean;
  private readonly token: TokenMode;
  private readonly tokenLayout: TokenLayout;
  private readonly analysis: ModuleAnalysis;
  private readonly declared: Map<string, DeclaredType>;
  private readonly shapes = new Map<string, TensorShape>();
  private readonly modulePlans = new Map<string, LayerPlan>();
  private readonly foldHints = new Map<string, string>();
  private readonly rawPlans = new Map<string, LayerPlan>();
  private cached: { key: string; session: TargetSession; outputs: string[] } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private released = false;

  /** @internal use createOnnxTargetModel */
  constructor(
    private readonly loaded: LoadedModel,
    options: OnnxTargetModelOptions,
    private readonly config: SessionConfig,
  ) {
    this.channelsLast = options.channelsLast ?? false;
    this.runBatch = runBatchFor(options.device, options.runBatchSize);
    this.token = options.token ?? 'cls';
    this.tokenLayout = options.tokenLayout ?? 'auto';
    const view = graphView(loaded);
    this.declared = declaredTypes(loaded);

    // the image input
    const inputs = view.inputs;
    if (options.inputName !== undefined && !inputs.includes(options.inputName))
      throw new ArgumentError(
        `'inputName' '${options.inputName}' is not an input of '${loaded.path}'; its inputs are ${formatChoices(inputs)}`,
      );
    if (options.inputName === undefined && inputs.length !== 1)
      throw new ArgumentError(
        `target model '${loaded.path}' has ${inputs.length} inputs (${formatChoices(inputs)}); pass 'inputName' to choose the image input`,
      );
    this.inputName = options.inputName ?? inputs[0];
    const dt = this.declared.get(this.inputName);
    if (dt?.dtype !== 'float32' || dt.dims?.length !== 4)
      throw new ClipDissectError(
        'ERR_MODEL_INPUT',
        `the image input '${this.inputName}' of '${loaded.path}' must be a 4-D float32 tensor (NCHW) but is ${
          dt ? `${dt.dtype} of shape [${(dt.dims ?? []).map((d) => d ?? '?').join(', ')}]` : 'of unknown type'
        }`,
      );
    const d = dt.dims;
    this.inputNHWC =
      this.channelsLast && typeof d[3] === 'number' && (d[3] === 1 || d[3] === 3) && d[1] !== 1 && d[1] !== 3;
    const [cAxis, hAxis, wAxis] = this.inputNHWC ? [3, 1, 2] : [1, 2, 3];
    const channels = d[cAxis];
    if (typeof channels !== 'number')
      throw new ClipDissectError(
        'ERR_MODEL_INPUT',
        `the image input '${this.inputName}' of '${loaded.path}' has a symbolic channel axis (${String(channels)})`,
      );
    const size =
      options.imageSize === undefined
        ? undefined
        : typeof options.imageSize === 'number'
          ? [options.imageSize, options.imageSize]
          : options.imageSize;
    const hw = [d[hAxis], d[wAxis]].map((v, k) => {
      if (typeof v === 'number') {
        if (size && size[k] !== v)
          throw new ArgumentError(
            `'imageSize' [${size.join(', ')}] does not match the input '${this.inputName}' of '${loaded.path}', which is fixed at ${d[hAxis]}×${d[wAxis]}`,
          );
        return v;
      }
      if (!size)
        throw new ArgumentError(
          `the input '${this.inputName}' of '${loaded.path}' has symbolic ${k === 0 ? 'height' : 'width'} '${String(v)}'; pass 'imageSize' (e.g. 224)`,
        );
      return size[k];
    });
    this.inputShape = [channels, hw[0], hw[1]];
    this.fixedBatch = typeof d[0] === 'number' ? d[0] : null;

    this.analysis = analyseModules(view);
    this.exporter = this.analysis.exporter;
    if (this.analysis.modules.length === 0)
      this.warnings.push(
        `no PyTorch module names were found in '${loaded.path}' (neither scoped node names like '/layer4/Relu' nor 'pkg.torch.onnx.name_scopes' metadata); select layers by raw tensor name`,
      );
  }

  /** @internal */
  async init(): Promise<void> {
    const { analysis } = this;
    await checkDevice(this.config, this.loaded.path);
    await this.resolveShapes(analysis.candidateTensors);
    const folds = this.describeFolds(analysis.folded);
    const seenNames = new Set(analysis.modules);
    const shared = new Set(analysis.calls.filter((c) => c.call > 0).map((c) => c.module));
    for (const call of analysis.calls) {
      const floats = call.outputs.filter((t) => FLOAT_DTYPES.has(this.shapes.get(t)?.dtype ?? ''));
      if (floats.length === 0) continue;
      const name = call.call === 0 ? call.module : callName(call.module, call.call, seenNames);
      const tensor = floats[floats.length - 1];
      const warnings: string[] = [...(folds.get(call.module) ?? [])];
      if (floats.length > 1)
        warnings.push(
          `module '${call.module}' hands ${floats.length} tensors to the rest of the graph (${formatChoices(floats)}); the last one is used, the others can be selected by tensor name`,
        );
      if (this.modulePlans.has(name)) continue;
      this.modulePlans.set(
        name,
        this.plan(name, tensor, warnings, shared.has(call.module) ? call.call : undefined),
      );
    }
  }

  private describeFolds(folded: readonly FoldedBatchNorm[]): Map<string, string[]> {
    const byModule = new Map<string, string[]>();
    const add = (m: string, w: string) => {
      const list = byModule.get(m) ?? [];
      list.push(w);
      byModule.set(m, list);
    };
    const ts = folded.filter((f) => f.exporter === 'torchscript');
    const dy = folded.filter((f) => f.exporter === 'dynamo');
    for (const f of ts) {
      if (!f.conv) continue;
      add(
        f.conv,
        `the exporter folded the BatchNorm that follows conv '${f.conv}' into its weights, so '${f.conv}' reads bn(conv(x)), not conv(x); re-export with torch.onnx.export(..., do_constant_folding=False) or training=torch.onnx.TrainingMode.PRESERVE to keep them apart`,
      );
    }
    for (const f of dy) {
      if (f.conv)
        this.foldHints.set(
          f.conv,
          `'${f.conv}' was fused with BatchNorm '${f.bn ?? '?'}' by the exporter's optimizer and has no output of its own; '${f.bn ?? 'the BatchNorm'}' is available, or re-export with torch.onnx.export(..., dynamo=True, optimize=False) to keep '${f.conv}'`,
        );
    }
    if (ts.length > 0)
      this.warnings.push(
        `BatchNorm folded into ${ts.length} Conv layer${ts.length > 1 ? 's' : ''} at export (constant folding): ${formatChoices(
          ts.map((f) => f.conv ?? '?').slice(0, 8),
        )}${ts.length > 8 ? ' …' : ''} read bn(conv(x)), not conv(x); re-export with torch.onnx.export(..., dynamo=False, do_constant_folding=False) or training=torch.onnx.TrainingMode.PRESERVE to dissect the convolutions themselves`,
      );
    if (dy.length > 0)
      this.warnings.push(
        `BatchNorm fused into the preceding Conv at export for ${dy.length} pair${dy.length > 1 ? 's' : ''} (onnxscript FuseBatchNormIntoConv): ${formatChoices(
          dy.map((f) => f.conv ?? '?').slice(0, 8),
        )}${dy.length > 8 ? ' …' : ''} have no output of their own (the BatchNorms after them do); re-export with torch.onnx.export(..., dynamo=True, optimize=False) to keep them`,
      );
    return byModule;
  }

  layers(): LayerInfo[] {
    return [...this.modulePlans.values()].map((p) => p.info);
  }

  async describe(selection: LayerSelection): Promise<LayerInfo[]> {
    this.checkLive();
    const names = resolveLayers(selection, [...this.modulePlans.keys()], {
      isAlsoValid: (n) => this.analysis.producer.has(n) || n === this.inputName,
      hint: (n) => this.foldHints.get(n),
    });
    const raw = names.filter((n) => !this.modulePlans.has(n) && !this.rawPlans.has(n));
    if (raw.length > 0) {
      await this.resolveShapes(raw);
      for (const t of raw) this.rawPlans.set(t, this.plan(t, t, [], undefined));
    }
    return names.map((n) => (this.modulePlans.get(n) ?? this.rawPlans.get(n)!).info);
  }

  async activations(
    batch: Float32Array,
    batchSize: number,
    layers: readonly string[],
    pool: PoolMode,
  ): Promise<Map<string, Matrix>> {
    const run = this.queue.then(() => this.activationsNow(batch, batchSize, layers, pool));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async activationsNow(
    batch: Float32Array,
    batchSize: number,
    layers: readonly string[],
    pool: PoolMode,
  ): Promise<Map<string, Matrix>> {
    this.checkLive();
    if (!POOL_MODES.includes(pool))
      throw new ArgumentError(`'pool' must be ${formatChoices(POOL_MODES)} but got '${String(pool)}'`);
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new ArgumentError(`'batchSize' must be a positive integer but got ${batchSize}`);
    if (!(batch instanceof Float32Array))
      throw new ArgumentError(
        `'batch' must be a Float32Array (NCHW) but got ${Object.prototype.toString.call(batch)}`,
      );
    const [c, h, w] = this.inputShape;
    const per = c * h * w;
    if (batch.length !== batchSize * per)
      throw new ShapeError(
        `'batch' has ${batch.length} values but ${batchSize} images of ${c}×${h}×${w} (NCHW) need ${batchSize * per}`,
      );
    const infos = await this.describeDissectable([...layers]);
    const { session, outputs } = await this.sessionFor(infos, pool);

    const result = new Map<string, Matrix>();
    const mats = infos.map((info) => {
      const m: Matrix = {
        rows: batchSize,
        cols: info.neurons,
        data: new Float32Array(batchSize * info.neurons),
      };
      result.set(info.name, m);
      return m;
    });
    const step = this.fixedBatch ?? Math.min(this.runBatch, batchSize);
    for (let start = 0; start < batchSize; start += step) {
      const n = Math.min(step, batchSize - start);
      // a fixed batch is padded up to its size; a symbolic one runs the n images left
      const chunk = this.fixedBatch ?? n;
      let x = batch.subarray(start * per, (start + n) * per);
      if (n < chunk) {
        const padded = new Float32Array(chunk * per);
        padded.set(x);
        x = padded;
      }
      if (this.inputNHWC) x = nchwToNhwc(x, chunk, c, h, w);
      const dims = this.inputNHWC ? [chunk, h, w, c] : [chunk, c, h, w];
      const res = await session.run(this.inputName, x, dims, outputs);
      outputs.forEach((name, k) => {
        const out = res.get(name)!;
        const m = mats[k];
        const expected = [chunk, m.cols];
        if (out.dims.length !== 2 || out.dims[0] !== chunk || out.dims[1] !== m.cols)
          throw new ClipDissectError(
            'ERR_MODEL_OUTPUT',
            `layer '${infos[k].name}' pooled to shape [${out.dims.join(', ')}] but [${expected.join(', ')}] was expected`,
          );
        m.data.set((out.data as Float32Array).subarray(0, n * m.cols), start * m.cols);
      });
    }
    return result;
  }

  async prepare(layers: readonly string[], pool: PoolMode): Promise<void> {
    const run = this.queue.then(async () => {
      this.checkLive();
      if (!POOL_MODES.includes(pool))
        throw new ArgumentError(`'pool' must be ${formatChoices(POOL_MODES)} but got '${String(pool)}'`);
      await this.sessionFor(await this.describeDissectable([...layers]), pool);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** describe(), refusing layers that cannot be dissected (ArgumentError naming the layer and why). */
  async describeDissectable(selection: LayerSelection): Promise<LayerInfo[]> {
    const infos = await this.describe(selection);
    for (const info of infos)
      if (info.kind === 'unsupported')
        throw new ArgumentError(
          `layer '${info.name}' (tensor '${info.tensor}') cannot be dissected: ${info.reason}`,
        );
    return infos;
  }

  /** The session computing these pooled outputs (the last one is kept; another set of outputs replaces it). */
  private async sessionFor(
    infos: LayerInfo[],
    pool: PoolMode,
  ): Promise<{ session: TargetSession; outputs: string[] }> {
    const requests = infos.map((info) => this.request(info, pool));
    const key = JSON.stringify(requests);
    if (this.cached?.key !== key) {
      const old = this.cached;
      this.cached = null;
      if (old) await old.session.release();
      const { bytes, outputs } = pooledModel(this.loaded, this.inputName, requests);
      const session = await TargetSession.create(bytes, this.loaded, this.config);
      this.cached = { key, session, outputs };
    }
    return this.cached;
  }

  private request(info: LayerInfo, pool: PoolMode): PooledOutput {
    const plan = this.modulePlans.get(info.name) ?? this.rawPlans.get(info.name)!;
    let reduction: Reduction;
    if (info.kind === 'spatial')
      reduction = {
        op: pool === 'avg' ? 'reduce-mean' : 'reduce-max',
        axes: this.channelsLast ? [1, 2] : [2, 3],
      };
    else if (info.kind === 'tokens') {
      const tokenAxis = info.sequenceFirst ? 0 : 1;
      reduction =
        this.token === 'cls'
          ? { op: 'gather', axis: tokenAxis, index: 0 }
          : { op: 'reduce-mean', axes: [tokenAxis] };
    } else reduction = { op: 'identity' };
    return { tensor: info.tensor, reduction, isFloat32: plan.isFloat32 };
  }

  /** Layer information of `tensor` (its shape must have been resolved). */
  private plan(name: string, tensor: string, warnings: string[], call: number | undefined): LayerPlan {
    const s = this.shapes.get(tensor)!;
    const shape = s.shape.map((d, i) => (i === s.batchAxis ? BATCH : (d ?? '?')));
    const base = { name, tensor, shape, ...(call !== undefined ? { call } : {}) };
    const unsupported = (reason: string): LayerPlan => ({
      info: { ...base, neurons: 0, kind: 'unsupported', reason, warnings },
      rank: s.shape.length,
      isFloat32: s.dtype === 'float32',
    });
    if (!FLOAT_DTYPES.has(s.dtype)) return unsupported(`it holds ${s.dtype} values, not floating point`);
    const rank = s.shape.length;
    if (s.batchAxis === null)
      return unsupported(
        `no axis of its shape [${shape.join(', ')}] follows the batch size (the batch is folded into another axis, or the model runs only at its export batch size)`,
      );
    let kind: LayerKind;
    let neuronAxis: number;
    let sequenceFirst: boolean | undefined;
    if (rank === 4 && s.batchAxis === 0) {
      kind = 'spatial';
      neuronAxis = this.channelsLast ? 3 : 1;
    } else if (rank === 3 && (s.batchAxis === 0 || s.batchAxis === 1)) {
      kind = 'tokens';
      sequenceFirst = s.batchAxis === 1;
      neuronAxis = 2;
    } else if (rank === 2 && s.batchAxis === 0) {
      kind = 'vector';
      neuronAxis = 1;
    } else
      return unsupported(
        `its shape [${shape.join(', ')}] is not [batch, C, H, W], [batch, tokens, C], [tokens, batch, C] or [batch, C]`,
      );
    const neurons = s.shape[neuronAxis];
    if (typeof neurons !== 'number' || neurons < 1)
      return unsupported(`its neuron axis ${neuronAxis} has unknown size in [${shape.join(', ')}]`);
    return {
      info: {
        ...base,
        neurons,
        kind,
        ...(sequenceFirst !== undefined ? { sequenceFirst } : {}),
        warnings,
      },
      rank,
      isFloat32: s.dtype === 'float32',
    };
  }

  /** Fills `this.shapes` for the given tensors: from declared types where complete, else from a probe run. */
  private async resolveShapes(tensors: readonly string[]): Promise<void> {
    const batchParam = this.declared.get(this.inputName)?.dims?.[0];
    const missing: string[] = [];
    for (const t of tensors) {
      if (this.shapes.has(t)) continue;
      const d = this.declared.get(t);
      const s = d ? this.fromDeclared(d, typeof batchParam === 'string' ? batchParam : null) : null;
      if (s) this.shapes.set(t, s);
      else missing.push(t);
    }
    if (missing.length === 0) return;
    const batchName = typeof batchParam === 'string' ? batchParam : null;
    const inferred = await this.inferShapes(missing);
    const unresolved: string[] = [];
    for (const t of missing) {
      const d = inferred.get(t);
      const s = d ? this.fromDeclared(d, batchName) : null;
      if (s) this.shapes.set(t, s);
      else unresolved.push(t);
    }
    if (unresolved.length > 0) await this.probeShapes(unresolved);
  }

  /**
   * onnxruntime's static shape inference of the given tensors, on the graph without its weights (a session of
   * a few kilobytes, opened in milliseconds and never run). Empty when onnxruntime cannot open it: the probe
   * run then finds every shape and reports what fails.
   */
  private async inferShapes(tensors: readonly string[]): Promise<Map<string, DeclaredType>> {
    const bytes = shapeInferenceModel(this.loaded, this.inputName, tensors);
    const cpu: SessionConfig = { device: 'cpu', threads: 1, optimization: 'disabled' };
    try {
      return await withSession(bytes, null, cpu, async (s) => s.outputShapes());
    } catch {
      return new Map();
    }
  }

  /** Shapes from running the model at batch sizes 1 and 2 (or its fixed batch size) with zero images. */
  private async probeShapes(missing: readonly string[]): Promise<void> {
    const { bytes, shapes, samples } = probeModel(this.loaded, this.inputName, missing);
    const [c, h, w] = this.inputShape;
    const sizes = this.fixedBatch !== null ? [this.fixedBatch] : [1, 2];
    // run once or twice for shapes only: basic optimisations make the session ~0.7 s faster to open (ResNet-50)
    const cpu: SessionConfig = { device: 'cpu', threads: this.config.threads, optimization: 'basic' };
    const runs = await withSession(bytes, this.loaded, cpu, async (session) => {
      const types = session.outputTypes();
      const out: { types: Map<string, string>; dims: number[][][] } = { types, dims: [] };
      for (const n of sizes) {
        const x = new Float32Array(n * c * h * w);
        const dims = this.inputNHWC ? [n, h, w, c] : [n, c, h, w];
        let res: Awaited<ReturnType<TargetSession['run']>>;
        try {
          res = await session.run(this.inputName, x, dims, shapes);
        } catch (e) {
          throw new ClipDissectError(
            'ERR_MODEL_RUN',
            `target model '${this.loaded.path}' fails on a batch of ${n} image${n > 1 ? 's' : ''} of ${c}×${h}×${w}: ${(e as Error).message.trim()}${
              this.fixedBatch === null
                ? '; was it exported with a dynamic batch axis that the graph really honours (dynamic_axes={input: {0: "batch"}} / dynamic_shapes)?'
                : ''
            }`,
            { cause: e },
          );
        }
        out.dims.push(shapes.map((s) => Array.from(res.get(s)!.data as BigInt64Array, Number)));
      }
      return out;
    });
    missing.forEach((t, i) => {
      const dtype = runs.types.get(samples[i]) ?? 'unknown';
      const d1 = runs.dims[0][i];
      let batchAxis: number | null = null;
      if (runs.dims.length === 2) {
        const d2 = runs.dims[1][i];
        const grows = d1.map((v, a) => v !== d2[a]);
        const axes = d1.map((_, a) => a).filter((a) => grows[a]);
        if (axes.length === 1 && d1[axes[0]] === 1 && d2[axes[0]] === 2) batchAxis = axes[0];
      } else batchAxis = this.guessBatchAxis(d1, this.fixedBatch!);
      this.shapes.set(t, { dtype, shape: d1, batchAxis });
    });
  }

  private fromDeclared(d: DeclaredType, batchParam: string | null): TensorShape | null {
    if (!d.dims || d.dims.some((v) => v === null)) return null;
    let batchAxis: number | null;
    if (batchParam !== null) {
      const axes = d.dims.map((_, a) => a).filter((a) => d.dims![a] === batchParam);
      if (axes.length !== 1 || d.dims.some((v) => typeof v === 'string' && v !== batchParam)) return null;
      batchAxis = axes[0];
    } else {
      // an unnamed dynamic batch axis cannot be matched: the probe finds it
      if (this.fixedBatch === null || d.dims.some((v) => typeof v === 'string')) return null;
      batchAxis = this.guessBatchAxis(d.dims as number[], this.fixedBatch);
    }
    return { dtype: d.dtype, shape: d.dims, batchAxis };
  }

  /** For models with a fixed batch size: the batch axis by layout convention (0, or 1 for sequence-first). */
  private guessBatchAxis(dims: readonly number[], batch: number): number | null {
    const axis = dims.length === 3 && this.tokenLayout === 'sequence-first' ? 1 : 0;
    return dims[axis] === batch ? axis : null;
  }

  private checkLive(): void {
    if (this.released)
      throw new ClipDissectError('ERR_RELEASED', `target model '${this.loaded.path}' was released`);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.queue;
    const c = this.cached;
    this.cached = null;
    if (c) await c.session.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

function callName(module: string, call: number, taken: ReadonlySet<string>): string {
  const name = `${module}_${call}`;
  return taken.has(name) ? `${module}@${call}` : name;
}

function nchwToNhwc(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    const base = b * c * hw;
    for (let ch = 0; ch < c; ch++) {
      const src = base + ch * hw;
      for (let p = 0; p < hw; p++) out[base + p * c + ch] = x[src + p];
    }
  }
  return out;
}
