/**
 * String distances for did-you-mean messages: the CLI's flag and command suggestions and the layer-name
 * suggestions of target models. Pure functions on strings, at the bottom of the layering with the other
 * message helpers (formatChoices in ./errors.ts).
 */

/** `candidates` sorted by edit distance to `name` (ties: shared prefix length, then original order). */
export function closestNames(name: string, candidates: readonly string[]): string[] {
  const scored = candidates.map((c, i) => ({ c, i, d: editDistance(name, c), p: sharedPrefix(name, c) }));
  scored.sort((a, b) => a.d - b.d || b.p - a.p || a.i - b.i);
  return scored.map((s) => s.c);
}

function sharedPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** Optimal-string-alignment distance (Levenshtein with adjacent transpositions), O(|a|·|b|). */
export function editDistance(a: string, b: string): number {
  const n = a.length;
  const m = b.length;
  if (n === 0) return m;
  if (m === 0) return n;
  let prev2 = new Array<number>(m + 1).fill(0);
  let prev = Array.from({ length: m + 1 }, (_, j) => j);
  let cur = new Array<number>(m + 1).fill(0);
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, prev2[j - 2] + 1);
      cur[j] = v;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[m];
}
