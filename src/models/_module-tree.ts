/**
 * PyTorch module names recovered from an exported ONNX graph (internal to src/models).
 *
 * Both exporters record, for every node, the stack of modules whose forward created it:
 * - the TorchScript exporter (`dynamo=False`) in the node name: `/layer4/layer4.1/relu_1/Relu`, one segment per
 *   module, each the module's name from its last non-numeric atom on (`layer4.1`, `features.43`, `relu`), with
 *   `_1`, `_2`, … for the second, third, … call of the same module;
 * - the dynamo exporter (`dynamo=True`) in the node's `pkg.torch.onnx.name_scopes` metadata, a Python list
 *   literal of full module paths: `['', 'layer4', 'layer4.1', 'layer4.1.relu', 'relu_16']` (root, modules, op).
 *
 * A module's output is the tensor produced by a node inside its scope and consumed outside it (or a graph
 * output). Only data tensors count: those whose values depend on the image's values (not constants, nor
 * shape arithmetic or masks built from the input's shape, which the dynamo optimizer may share between
 * layers), and only floating-point ones, which the caller filters once types are known. The dynamo exporter
 * does not number calls, so one scope can hold several calls of a shared module (torchvision's BasicBlock
 * uses `relu` twice); they are told apart as connected components of the scope's nodes and named
 * like the TorchScript exporter names them (`relu`, `relu_1`).
 */

/** A node reduced to what the analysis needs. */
export interface GraphNode {
  readonly name: string;
  readonly opType: string;
  readonly domain: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Outer-scope tensors read by the node's subgraphs (If / Loop / Scan bodies). */
  readonly implicitInputs: readonly string[];
  readonly metadata: ReadonlyMap<string, string>;
}

export interface GraphView {
  readonly nodes: readonly GraphNode[];
  /** Graph inputs that are not initializers (the image). */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly initializers: ReadonlySet<string>;
}

export type Exporter = 'torchscript' | 'dynamo' | 'unknown';

/** The module path stack (outermost first, full dotted paths) of a node; [] for the root or no scope info. */
export function nodeScopes(node: Pick<GraphNode, 'name' | 'metadata'>): {
  scopes: string[];
  exporter: Exporter;
} {
  const meta = node.metadata.get('pkg.torch.onnx.name_scopes');
  if (meta !== undefined) {
    const list = parsePythonStringList(meta);
    // ['', 'layer1', 'layer1.0', 'relu_1']: the root, the modules, then the op itself. A list that does not
    // start with the root ('_empty_nn_module_stack_from_metadata_hook') has no module stack.
    if (list === null || list.length < 2 || list[0] !== '') return { scopes: [], exporter: 'dynamo' };
    return { scopes: list.slice(1, -1).filter((s) => s.length > 0), exporter: 'dynamo' };
  }
  if (node.name.startsWith('/')) return { scopes: torchScriptScopes(node.name), exporter: 'torchscript' };
  return { scopes: [], exporter: 'unknown' };
}

/**
 * `/layer1/layer1.0/relu_1/Relu` → ['layer1', 'layer1.0', 'layer1.0.relu_1']. A segment with dots starts at its
 * module's last non-numeric atom (`layer1.0` under `layer1`, `blocks.0.1` under `blocks.0`, `features.43` at
 * the root), so its last atom is what it adds to the parent path.
 */
export function torchScriptScopes(nodeName: string): string[] {
  const segments = nodeName.split('/').slice(1, -1);
  const out: string[] = [];
  let path = '';
  for (const seg of segments) {
    if (seg.length === 0) continue;
    const atoms = seg.split('.');
    if (path === '') path = seg;
    else if (atoms.length === 1) path = `${path}.${seg}`;
    else {
      const parentTail = atoms.slice(0, -1).join('.');
      path =
        path === parentTail || path.endsWith(`.${parentTail}`)
          ? `${path}.${atoms[atoms.length - 1]}`
          : `${path}.${seg}`;
    }
    out.push(path);
  }
  return out;
}

/** Parses a Python list-of-strings literal (`['a', "b'c", 'd\\n']`); null when it is not one. */
export function parsePythonStringList(s: string): string[] | null {
  let i = 0;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i])) i++;
  };
  ws();
  if (s[i] !== '[') return null;
  i++;
  const out: string[] = [];
  ws();
  if (s[i] === ']') return out;
  for (;;) {
    ws();
    const q = s[i];
    if (q !== "'" && q !== '"') return null;
    i++;
    let v = '';
    while (i < s.length && s[i] !== q) {
      if (s[i] === '\\' && i + 1 < s.length) {
        const e = s[i + 1];
        v += e === 'n' ? '\n' : e === 't' ? '\t' : e;
        i += 2;
      } else v += s[i++];
    }
    if (i >= s.length) return null;
    i++;
    out.push(v);
    ws();
    if (s[i] === ',') {
      i++;
      ws();
      if (s[i] === ']') return out;
      continue;
    }
    if (s[i] === ']') return out;
    return null;
  }
}

/** One call of a module: the nodes it created and the tensors leaving it. */
export interface ModuleCall {
  /** Full module path (`layer1.0.relu`). */
  readonly module: string;
  /** 0 for the first call; later calls are named `module_1`, `module_2`, … */
  readonly call: number;
  /** Index of the call's first node (graph order). */
  readonly firstNode: number;
  /** Data tensors produced inside and consumed outside (or graph outputs), in graph order. */
  readonly outputs: readonly string[];
}

export interface FoldedBatchNorm {
  /** The conv module whose output now includes the BatchNorm (undefined when its name is lost). */
  readonly conv: string | undefined;
  /** The BatchNorm module (undefined when the TorchScript exporter dropped its name). */
  readonly bn: string | undefined;
  readonly exporter: Exporter;
}

export interface ModuleAnalysis {
  readonly exporter: Exporter;
  /** Every module path seen in a scope, in order of first appearance. */
  readonly modules: readonly string[];
  /** Candidate calls, ordered by first node; several per scope only for the dynamo exporter's shared modules. */
  readonly calls: readonly ModuleCall[];
  /** Every candidate output tensor (deduplicated). */
  readonly candidateTensors: readonly string[];
  readonly folded: readonly FoldedBatchNorm[];
  /** Tensor → index of the node producing it. */
  readonly producer: ReadonlyMap<string, number>;
  /** Tensors whose values depend on the image's values (not just on its shape). */
  readonly dynamic: ReadonlySet<string>;
}

/** Ops whose output depends on their input's shape only, not on its values. */
const SHAPE_ONLY_OPS: ReadonlySet<string> = new Set(['Shape', 'Size', 'EyeLike']);

export function analyseModules(g: GraphView): ModuleAnalysis {
  const producer = new Map<string, number>();
  const consumers = new Map<string, number[]>();
  const dynamic = new Set<string>(g.inputs);
  const nodeScopeList: string[][] = [];
  const exporters = new Map<Exporter, number>();
  const graphOutputs = new Set(g.outputs);

  g.nodes.forEach((node, i) => {
    const reads = [...node.inputs, ...node.implicitInputs];
    let isDynamic = false;
    for (const t of reads) {
      if (t === '') continue;
      const list = consumers.get(t);
      if (list) list.push(i);
      else consumers.set(t, [i]);
      if (dynamic.has(t)) isDynamic = true;
    }
    for (const t of node.outputs) {
      if (t === '') continue;
      producer.set(t, i);
      if (isDynamic && !SHAPE_ONLY_OPS.has(node.opType)) dynamic.add(t);
    }
    const { scopes, exporter } = nodeScopes(node);
    nodeScopeList.push(scopes);
    exporters.set(exporter, (exporters.get(exporter) ?? 0) + 1);
  });

  const exporter: Exporter =
    (exporters.get('dynamo') ?? 0) > 0
      ? 'dynamo'
      : (exporters.get('torchscript') ?? 0) > 0
        ? 'torchscript'
        : 'unknown';

  // module → its node indices (graph order)
  const members = new Map<string, number[]>();
  nodeScopeList.forEach((scopes, i) => {
    for (const m of scopes) {
      const list = members.get(m);
      if (list) list.push(i);
      else members.set(m, [i]);
    }
  });

  const calls: ModuleCall[] = [];
  const candidateSet = new Set<string>();
  for (const [module, nodes] of members) {
    const inside = new Set(nodes);
    const dyn = nodes.filter((i) => g.nodes[i].outputs.some((t) => dynamic.has(t)));
    // union-find over the module's data nodes, joined by tensors that stay inside the module
    const parent = new Map<number, number>(dyn.map((i) => [i, i]));
    const find = (x: number): number => {
      let r = x;
      while (parent.get(r) !== r) r = parent.get(r)!;
      parent.set(x, r);
      return r;
    };
    for (const i of dyn) {
      for (const t of [...g.nodes[i].inputs, ...g.nodes[i].implicitInputs]) {
        const p = producer.get(t);
        if (p !== undefined && parent.has(p)) {
          const a = find(i);
          const b = find(p);
          if (a !== b) parent.set(Math.max(a, b), Math.min(a, b));
        }
      }
    }
    const byRoot = new Map<number, { first: number; outputs: string[] }>();
    for (const i of dyn) {
      const root = find(i);
      let comp = byRoot.get(root);
      if (!comp) {
        comp = { first: i, outputs: [] };
        byRoot.set(root, comp);
      }
      for (const t of g.nodes[i].outputs) {
        if (t === '' || !dynamic.has(t)) continue;
        const leaves = graphOutputs.has(t) || (consumers.get(t) ?? []).some((c) => !inside.has(c));
        if (leaves) comp.outputs.push(t);
      }
    }
    const comps = [...byRoot.values()].filter((c) => c.outputs.length > 0).sort((a, b) => a.first - b.first);
    comps.forEach((c, k) => {
      calls.push({ module, call: k, firstNode: c.first, outputs: c.outputs });
      for (const t of c.outputs) candidateSet.add(t);
    });
  }
  calls.sort((a, b) => a.firstNode - b.firstNode || a.module.length - b.module.length);

  return {
    exporter,
    modules: [...members.keys()],
    calls,
    candidateTensors: [...candidateSet],
    folded: findFoldedBatchNorms(g, nodeScopeList, producer),
    producer,
    dynamic,
  };
}

/**
 * BatchNorms that the exporter folded into the preceding Conv (so that the conv's output is bn(conv(x))):
 * - dynamo: the onnxscript optimizer tags the fused Conv with rule `FuseBatchNormIntoConv` and keeps the
 *   BatchNorm's scope on it; the conv's weight keeps its parameter name (`conv1.weight`);
 * - TorchScript with constant folding (the default): the Conv keeps its scope but its weight is a folded
 *   constant with an anonymous name (`onnx::Conv_193`) instead of the module's parameter (`conv1.weight`).
 */
function findFoldedBatchNorms(
  g: GraphView,
  nodeScopeList: readonly string[][],
  producer: ReadonlyMap<string, number>,
): FoldedBatchNorm[] {
  const out: FoldedBatchNorm[] = [];
  // names that can stand for a parameter: initializers and the Identity copies made by deduplication
  const paramNames = new Set(g.initializers);
  for (const n of g.nodes)
    if (n.opType === 'Identity' && n.inputs.length === 1) for (const o of n.outputs) paramNames.add(o);
  g.nodes.forEach((node, i) => {
    if (node.opType !== 'Conv' || (node.domain !== '' && node.domain !== 'ai.onnx')) return;
    const scopes = nodeScopeList[i];
    const inner = scopes.length > 0 ? scopes[scopes.length - 1] : undefined;
    const rules = node.metadata.get('pkg.onnxscript.rewriter.rule_name') ?? '';
    if (rules.includes('FuseBatchNormIntoConv')) {
      const w = node.inputs[1] ?? '';
      const conv = w.endsWith('.weight') ? w.slice(0, -'.weight'.length) : undefined;
      out.push({ conv, bn: inner, exporter: 'dynamo' });
      return;
    }
    if (!node.name.startsWith('/') || inner === undefined) return;
    const w = node.inputs[1] ?? '';
    const isParam = paramNames.has(w) && producer.get(w) === undefined;
    const viaIdentity = producer.get(w) !== undefined && g.nodes[producer.get(w)!].opType === 'Identity';
    if (!(isParam || viaIdentity)) return; // computed weights: not a folding pattern we know
    if (w.startsWith('onnx::') && !paramNames.has(`${inner}.weight`))
      out.push({ conv: inner, bn: undefined, exporter: 'torchscript' });
  });
  return out;
}
