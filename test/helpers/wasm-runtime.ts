/**
 * Preload (`node --import ./dist/test/helpers/wasm-runtime.js --test …`) that runs a test file's sessions on the
 * WebAssembly runtime: the library's tests then check onnxruntime-web against the same golden values as
 * onnxruntime-node (`npm run test:wasm`). CLI commands choose their runtime themselves (--runtime).
 */
import { selectRuntime } from '../../src/runtime/index.js';

await selectRuntime('wasm');
