#!/usr/bin/env node
/**
 * Smoke test of the published package (run by .ci/run after `npm test`; `npm run pack:smoke` by hand):
 *
 * 1. `npm pack` (its `prepack` cleans dist/ and builds) into a temporary folder, and checks the file list:
 *    bin, dist/src with the WebAssembly kernels, the report page's src/report/page/report.{js,css}, LICENSE,
 *    CHANGELOG.md and README.md; no dist/test, dist/bench, other src, test or scripts.
 * 2. Installs the tarball into an empty project without network: `npm ci --offline` from a lockfile written
 *    from this repository's (the dependencies CI just installed, so their tarballs are in npm's cache), with
 *    the registry pointed at a closed port of 127.0.0.1, as a user would: no ONNXRUNTIME_NODE_INSTALL in the
 *    environment, no `allowScripts` in the project. onnxruntime-node (an optional peer dependency) must not
 *    be installed, and no package with an install script other than protobufjs's (a local version check).
 * 3. Checks that every source map in the installed package carries its sources (`sourcesContent`).
 * 4. Imports every entry point of package.json `exports` by the package's name from the empty project, and
 *    checks their names against this repository's build and that an internal module is not importable.
 * 5. Runs `npx clip-dissect --version`, and a tiny dissection (the repository's tiny ResNet and tiny CLIP, eight
 *    fixture images, ten concepts, `--offline`) with the installed CLI on the WebAssembly runtime (what
 *    `--runtime auto` takes without onnxruntime-node; args.json records it), then `clip-dissect cache list` and
 *    `cache verify` on its cache. The tiny CLIP needs the tokenizer files of ../shared/fixtures/clip-tokenizer;
 *    without them the dissection is skipped with a message.
 *
 * Exit status 0 when everything passed, 1 otherwise. The temporary folder is removed unless KEEP=1.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TOKENIZER = join(ROOT, '..', 'shared', 'fixtures', 'clip-tokenizer');
const started = Date.now();
const work = mkdtempSync(join(tmpdir(), 'clip-dissect-pack-'));
const app = join(work, 'app');
const env = {
  ...process.env,
  // nothing may come from the network: a registry request fails at once
  npm_config_registry: 'http://127.0.0.1:9/',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};
// the consumer's install must work without it (CI exports it for its own `npm ci`)
delete env.ONNXRUNTIME_NODE_INSTALL;

function fail(message) {
  console.error(`pack-smoke: FAIL: ${message}`);
  console.error(`pack-smoke: work folder kept: ${work}`);
  process.exit(1);
}

function run(cmd, args, cwd) {
  const t = Date.now();
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const line = `${cmd} ${args.join(' ')}`;
  if (r.error) fail(`${line}: ${r.error.message}`);
  if (r.status !== 0) fail(`${line} exited with ${r.status}\n${r.stdout}\n${r.stderr}`);
  console.log(`pack-smoke: ${line} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  return r.stdout;
}

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name)],
  );
}

// 1. pack
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const [packed] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], ROOT));
const files = packed.files.map((f) => f.path);
for (const need of [
  'package.json',
  'README.md',
  'LICENSE',
  'CHANGELOG.md',
  'bin/clip-dissect.js',
  'dist/src/index.js',
  'dist/src/index.d.ts',
  'dist/src/cli/main.js',
  'dist/src/compute/kernels.wasm',
  'src/report/page/report.js',
  'src/report/page/report.css',
]) {
  if (!files.includes(need)) fail(`the package lacks ${need}`);
}
// of src/ only the report page's script and stylesheet, which index.html inlines
const stray = files.filter(
  (f) =>
    /^(dist\/(test|bench)|src|test|scripts|assembly|bench)\//.test(f) &&
    f !== 'src/report/page/report.js' &&
    f !== 'src/report/page/report.css',
);
if (stray.length > 0) fail(`the package holds files it must not: ${stray.slice(0, 5).join(', ')}`);
console.log(
  `pack-smoke: ${packed.filename}: ${files.length} files, ${(packed.size / 1e6).toFixed(2)} MB packed, ${(packed.unpackedSize / 1e6).toFixed(2)} MB unpacked`,
);

// 2. install offline into an empty project
const tgz = join(work, packed.filename);
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
const spec = `file:../${packed.filename}`;
const project = {
  name: 'clip-dissect-pack-smoke',
  version: '1.0.0',
  private: true,
  dependencies: { 'clip-dissect': spec },
};
const packages = {
  '': { name: project.name, version: project.version, dependencies: project.dependencies },
  'node_modules/clip-dissect': {
    version: pkg.version,
    resolved: spec,
    integrity: `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`,
    license: pkg.license,
    dependencies: pkg.dependencies,
    peerDependencies: pkg.peerDependencies,
    peerDependenciesMeta: pkg.peerDependenciesMeta,
    bin: pkg.bin,
    engines: pkg.engines,
  },
};
// the runtime part of the repository's lockfile: what CI's `npm ci` put in npm's cache. The lockfile
// records no `resolved` URLs (npm then asks the registry for them); the registry's URL is given instead,
// and npm finds the tarball in its cache by the integrity hash.
for (const [path, entry] of Object.entries(lock.packages)) {
  if (!path.startsWith('node_modules/') || entry.dev) continue;
  const { devOptional, ...rest } = entry;
  const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
  const resolved =
    rest.resolved ?? `https://registry.npmjs.org/${name}/-/${name.split('/').pop()}-${rest.version}.tgz`;
  packages[path] = { ...rest, resolved, ...(devOptional ? { optional: true } : {}) };
}
mkdirSync(app);
writeFileSync(join(app, 'package.json'), `${JSON.stringify(project, null, 2)}\n`);
writeFileSync(
  join(app, 'package-lock.json'),
  `${JSON.stringify({ name: project.name, version: project.version, lockfileVersion: 3, requires: true, packages }, null, 2)}\n`,
);
run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], app);
const installed = join(app, 'node_modules', 'clip-dissect');
// nothing downloads at install: onnxruntime-node (whose install script fetches CUDA libraries) is not in the
// tree, and the only install script is protobufjs's version check
if (existsSync(join(app, 'node_modules', 'onnxruntime-node')))
  fail('onnxruntime-node was installed: it must stay an optional peer dependency');
const tree = JSON.parse(readFileSync(join(app, 'node_modules', '.package-lock.json'), 'utf8')).packages;
const scripted = Object.keys(tree).filter((p) => tree[p].hasInstallScript);
if (scripted.join() !== 'node_modules/protobufjs')
  fail(`packages with install scripts in the installed tree: ${scripted.join(', ')}`);
if (!existsSync(join(app, 'node_modules', 'onnxruntime-web')))
  fail('onnxruntime-web, the WebAssembly runtime, was not installed');
console.log(
  `pack-smoke: installed without onnxruntime-node (${Object.keys(tree).length} packages; install scripts: protobufjs only)`,
);
if (
  realpathSync(join(app, 'node_modules', '.bin', 'clip-dissect')) !==
  join(installed, 'bin', 'clip-dissect.js')
)
  fail('node_modules/.bin/clip-dissect is not the installed package');

// 3. source maps carry their sources
const maps = walk(installed).filter((f) => f.endsWith('.map'));
for (const m of maps) {
  const map = JSON.parse(readFileSync(m, 'utf8'));
  map.sources.forEach((s, i) => {
    if (typeof map.sourcesContent?.[i] !== 'string' && !existsSync(join(dirname(m), map.sourceRoot ?? '', s)))
      fail(`${relative(app, m)} points at ${s}, which is not in the package`);
  });
}
console.log(`pack-smoke: ${maps.length} source maps carry their sources`);

// 4. the library: every entry point of package.json `exports` imports by the package's name from the app, with
// the names it has in this repository's build (test/api/public-api.test.ts pins those); internals stay closed
const entryName = (sub) => (sub === '.' ? pkg.name : `${pkg.name}${sub.slice(1)}`);
const entries = Object.keys(pkg.exports).map(entryName);
writeFileSync(
  join(app, 'exports.mjs'),
  `const out = {};
for (const s of ${JSON.stringify(entries)}) out[s] = Object.keys(await import(s)).sort();
try {
  await import('${pkg.name}/dist/src/pipeline/cache.js');
  out.internal = 'importable';
} catch (e) {
  out.internal = e.code;
}
console.log(JSON.stringify(out));
`,
);
const seen = JSON.parse(run('node', ['exports.mjs'], app));
for (const [sub, target] of Object.entries(pkg.exports)) {
  const name = entryName(sub);
  const local = Object.keys(await import(join(ROOT, target.default))).sort();
  if (JSON.stringify(seen[name]) !== JSON.stringify(local))
    fail(
      `import '${name}' in the installed package gives ${seen[name]?.length} names, the build ${local.length}`,
    );
}
if (seen.internal !== 'ERR_PACKAGE_PATH_NOT_EXPORTED')
  fail(`an internal module of the installed package is importable (${seen.internal})`);
console.log(`pack-smoke: library: ${entries.join(', ')} import by name; internals are not exported`);

// 5. run the installed CLI
const version = run('npx', ['--no-install', 'clip-dissect', '--version'], app).trim();
if (version !== pkg.version) fail(`clip-dissect --version printed '${version}', expected '${pkg.version}'`);
console.log(`pack-smoke: clip-dissect --version: ${version}`);

if (!existsSync(join(TOKENIZER, 'tokenizer.json'))) {
  console.log(`pack-smoke: tiny dissection skipped: it needs the CLIP tokenizer files in ${TOKENIZER}`);
} else {
  const clip = join(work, 'tiny-clip');
  mkdirSync(join(clip, 'onnx'), { recursive: true });
  for (const f of [
    'config.json',
    'preprocessor_config.json',
    'onnx/text_model.onnx',
    'onnx/vision_model.onnx',
  ])
    copyFileSync(join(ROOT, 'test/fixtures/clip/model', f), join(clip, f));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
    copyFileSync(join(TOKENIZER, f), join(clip, f));
  const probe = join(work, 'probe');
  mkdirSync(probe);
  // eight: the trust figures that dissect computes by default need two halves of at least 4 images
  for (const f of [
    ...['rgb420.jpg', 'rgb422.jpg', 'rgb444.jpg', 'gray.jpg', 'gray.png', 'palette.png', 'rgba.png'],
    'wide300x20.png',
  ])
    copyFileSync(join(ROOT, 'test/fixtures/images', f), join(probe, f));
  const concepts = join(work, 'concepts.txt');
  writeFileSync(concepts, 'dog\ncat\nbird\ncar\ntree\nwater\nsky\ngrass\nroad\nperson\n');
  const out = join(work, 'out');
  const cache = join(work, 'cache');
  const stdout = run(
    'npx',
    [
      ...['--no-install', 'clip-dissect', 'dissect', '-q', '--offline', '--threads', '2'],
      ...['--target', join(ROOT, 'test/fixtures/models/resnet_small_ts.onnx'), '--layers', 'conv1,layer4'],
      ...['--probe', probe, '--concepts', concepts, '--clip', clip, '--top-k', '3'],
      ...['--preprocess', join(ROOT, 'test/fixtures/activations/preprocess.json')],
      ...['--cache-dir', cache, '--out', out],
    ],
    app,
  );
  if (!/^soft_wpmi: 2 layers × 10 concepts over 8 images/m.test(stdout))
    fail(`unexpected dissect summary:\n${stdout}`);
  const rows = readFileSync(join(out, 'descriptions.csv'), 'utf8').trim().split('\n');
  if (rows.length !== 1 + 8 + 64) fail(`descriptions.csv has ${rows.length} lines, expected 73`);
  if (!existsSync(join(out, 'report', 'index.html'))) fail('the dissection wrote no report');
  const args = JSON.parse(readFileSync(join(out, 'args.json'), 'utf8'));
  if (args.runtime !== 'wasm') fail(`the dissection ran on runtime '${args.runtime}', expected 'wasm'`);
  console.log(
    `pack-smoke: tiny dissection: ${rows.length - 1} neurons labelled on the ${args.runtime} runtime`,
  );
  const list = run('npx', ['--no-install', 'clip-dissect', 'cache', 'list', '--cache-dir', cache], app);
  if (!/^features +\d+ entries/m.test(list)) fail(`cache list shows no features:\n${list}`);
  run('npx', ['--no-install', 'clip-dissect', 'cache', 'verify', '--cache-dir', cache], app);
}

if (process.env.KEEP === '1') console.log(`pack-smoke: work folder kept: ${work}`);
else rmSync(work, { recursive: true, force: true });
console.log(`pack-smoke: PASS in ${((Date.now() - started) / 1000).toFixed(1)} s`);
