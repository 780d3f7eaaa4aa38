/**
 * Module hooks that resolve `#platform` to the in-memory platform (memory-platform.ts) instead of the Node
 * adapter: `node --import ./dist/test/helpers/memory-platform-register.js …`.
 */
interface ResolveContext {
  conditions: string[];
  parentURL?: string;
}
type NextResolve = (specifier: string, context: ResolveContext) => Promise<{ url: string }>;

export async function resolve(
  specifier: string,
  context: ResolveContext,
  next: NextResolve,
): Promise<{ url: string; shortCircuit?: boolean }> {
  if (specifier === '#platform')
    return { url: new URL('./memory-platform.js', import.meta.url).href, shortCircuit: true };
  return next(specifier, context);
}
