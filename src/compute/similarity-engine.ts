/** The similarity engine's former path: everything now lives in ./similarity/ (re-exported unchanged). */
export * from './similarity/index.js';
