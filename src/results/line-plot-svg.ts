/** A small self-contained SVG line plot (log or linear x axis), for figures such as the paper's Figure 6b. */

export interface LineSeries {
  label: string;
  x: readonly number[];
  y: readonly number[];
}

export interface LinePlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  logX?: boolean;
  width?: number;
  height?: number;
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** About 5 round tick values covering [lo, hi]. */
function niceTicks(lo: number, hi: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

function fmtTick(v: number): string {
  if (v !== 0 && (Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3)) return v.toExponential(0).replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

/** The plot as an SVG document. Non-finite points are left out. */
export function linePlotSvg(series: readonly LineSeries[], o: LinePlotOptions): string {
  const W = o.width ?? 640;
  const H = o.height ?? 420;
  const m = { left: 70, right: 20, top: 40, bottom: 55 };
  const tx = (x: number) => (o.logX ? Math.log10(x) : x);
  const pts = series.map((s) =>
    s.x.map((x, i) => [x, s.y[i]] as const).filter(([x, y]) => Number.isFinite(y) && Number.isFinite(tx(x))),
  );
  const xs = pts.flat().map(([x]) => tx(x));
  const ys = pts.flat().map(([, y]) => y);
  let [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  let [y0, y1] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
  if (x1 === x0) [x0, x1] = [x0 - 0.5, x1 + 0.5];
  const pad = (y1 - y0) * 0.05 || 0.05;
  [y0, y1] = [y0 - pad, y1 + pad];
  const px = (x: number) => m.left + ((tx(x) - x0) / (x1 - x0)) * (W - m.left - m.right);
  const py = (y: number) => H - m.bottom - ((y - y0) / (y1 - y0)) * (H - m.top - m.bottom);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(o.title)}</text>`);
  // axes
  const bx = m.left;
  const by = H - m.bottom;
  out.push(`<path d="M${bx},${m.top} V${by} H${W - m.right}" fill="none" stroke="black" stroke-width="1"/>`);
  const xTicks = o.logX
    ? Array.from({ length: Math.floor(x1) - Math.ceil(x0) + 1 }, (_, i) => 10 ** (Math.ceil(x0) + i))
    : niceTicks(x0, x1);
  for (const t of xTicks) {
    const x = px(t).toFixed(1);
    out.push(`<line x1="${x}" y1="${by}" x2="${x}" y2="${by + 5}" stroke="black"/>`);
    const label = o.logX ? `10<tspan dy="-5" font-size="9">${Math.round(Math.log10(t))}</tspan>` : fmtTick(t);
    out.push(`<text x="${x}" y="${by + 19}" text-anchor="middle">${label}</text>`);
  }
  for (const t of niceTicks(y0, y1)) {
    const y = py(t).toFixed(1);
    out.push(`<line x1="${bx - 5}" y1="${y}" x2="${bx}" y2="${y}" stroke="black"/>`);
    out.push(
      `<line x1="${bx}" y1="${y}" x2="${W - m.right}" y2="${y}" stroke="#ddd" stroke-dasharray="2,3"/>`,
    );
    out.push(
      `<text x="${bx - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmtTick(t)}</text>`,
    );
  }
  out.push(
    `<text x="${(m.left + W - m.right) / 2}" y="${H - 12}" text-anchor="middle">${esc(o.xLabel)}</text>`,
  );
  out.push(
    `<text transform="translate(18,${(m.top + by) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  // series and legend
  pts.forEach((p, k) => {
    const color = COLORS[k % COLORS.length];
    const d = p.map(([x, y], i) => `${i ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const [x, y] of p)
      out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="2.5" fill="${color}"/>`);
    // legend in the lower left (the notebook's loc='lower left'), clear of rising curves
    const ly = H - m.bottom - 12 - 16 * (pts.length - 1 - k);
    const lx = m.left + 12;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 20}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${lx + 25}" y="${ly}" dominant-baseline="middle">${esc(series[k].label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
