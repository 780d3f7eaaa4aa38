/** Keeps each neuron's best concepts while concept chunks stream by. Internal. */

/** Keeps the best `top` (value, index) pairs of each of K rows while concept chunks stream by. */
export class TopTracker {
  readonly idx: Int32Array;
  readonly val: Float32Array;
  constructor(
    readonly rows: number,
    readonly top: number,
  ) {
    this.idx = new Int32Array(rows * top).fill(-1);
    this.val = new Float32Array(rows * top).fill(Number.NEGATIVE_INFINITY);
  }

  /**
   * Merges a chunk: row r's values are `data[r*stride + j]` for j < width, concept index c0 + j.
   * Chunks arrive in increasing concept order, so a tie never displaces an earlier (lower) index.
   */
  update(data: Float32Array, stride: number, width: number, c0: number): void {
    const { top, idx, val } = this;
    for (let r = 0; r < this.rows; r++) {
      const o = r * top;
      const base = r * stride;
      let worst = val[o + top - 1];
      let worstIdx = idx[o + top - 1];
      for (let j = 0; j < width; j++) {
        const v = data[base + j];
        if (Number.isNaN(v) || (!(v > worst) && worstIdx !== -1)) continue;
        // insert keeping the row sorted descending
        let pos = top - 1;
        while (pos > 0 && (v > val[o + pos - 1] || idx[o + pos - 1] === -1)) {
          val[o + pos] = val[o + pos - 1];
          idx[o + pos] = idx[o + pos - 1];
          pos--;
        }
        val[o + pos] = v;
        idx[o + pos] = c0 + j;
        worst = val[o + top - 1];
        worstIdx = idx[o + top - 1];
      }
    }
  }

  /** Rows that saw only NaN get concept 0 with a NaN score. */
  finish(): void {
    for (let i = 0; i < this.idx.length; i++) {
      if (this.idx[i] === -1) {
        this.idx[i] = 0;
        this.val[i] = Number.NaN;
      }
    }
  }
}
