// @ts-check
/**
 * The report page's script, inlined into index.html by src/report/_report-page.ts. The data comes from
 * `data.js` beside index.html (`window.CLIP_DISSECT_REPORT`, written by src/report/html-report.ts); nothing is
 * fetched from a network (the page's Content-Security-Policy forbids it), so the page works from file:// and
 * offline. A classic script, not a module: it runs in an IIFE in strict mode.
 *
 * Views (URL hash): `#` overview of every layer; `#<layer>` a layer's table; `#<layer>/<unit>` a neuron.
 * Keys: j / ↓ next neuron, k / ↑ previous (in the table's order), [ / ] previous / next layer,
 * / search, Esc closes the search.
 */

/**
 * The trust figures of a layer, per neuron (see TrustData in html-report.ts); badge 0 high, 1 medium, 2 low,
 * 3 dead.
 * @typedef {object} TrustData
 * @property {number[]} badge
 * @property {number[]} stability
 * @property {(number | null)[]} p
 * @property {(number | null)[]} z
 * @property {(number | null)[]} sim
 * @property {(number | null)[]} metrics n×5: correlation, cosine, AUPRC, F1, IoU
 * @property {number[]} fitLabel
 * @property {number[]} runnerUp concept id of the runner-up label, -1: none
 * @property {number[]} runnerUpFraction
 * @property {{ heldOutImages: number, presence: string } | null} settings
 * @property {TrustSummary | null} summary
 */

/**
 * @typedef {object} TrustSummary
 * @property {{ high: number, medium: number, low: number }} badges
 * @property {{ mean: number | null }} stability
 * @property {number} significant
 * @property {{ mean: number | null }} simulation
 */

/**
 * A layer as data.js holds it (LayerData in html-report.ts), and the fields the page adds to it.
 * @typedef {object} Layer
 * @property {string} name
 * @property {number} n
 * @property {number[]} label concept id per neuron
 * @property {(number | null)[]} score
 * @property {number[]} dead
 * @property {number[]} top n×nTop concept ids (-1: none)
 * @property {(number | null)[]} topScore
 * @property {number} nTop
 * @property {number[]} img n×nImg image rows (-1: none)
 * @property {(number | null)[]} act
 * @property {number} nImg
 * @property {number[]} strip n×bands×stripSize image rows (-1: none)
 * @property {(number | null)[]} cut n×bands band edges
 * @property {TrustData} [trust]
 * @property {Uint8Array} isDead added by the page
 * @property {Int32Array} rank rank by score among the live neurons, -1: dead or no score
 * @property {number} live
 * @property {number[]} byScore the live neurons, best score first
 * @property {number} lo
 * @property {number} hi
 * @property {[number, number][]} freq [concept id, count] of the labels, most frequent first
 * @property {{ key: string, dir: number }} sort
 * @property {number} filter trust badge shown, -1: all
 * @property {number} page
 * @property {number[] | null} order
 * @property {Int32Array} pos position of each neuron in `order`, -1: filtered out
 */

/**
 * window.CLIP_DISSECT_REPORT (the `data` object of html-report.ts).
 * @typedef {object} ReportData
 * @property {string} version
 * @property {ReportMeta} meta
 * @property {string[]} concepts
 * @property {Record<string, string>} images display name by image row
 * @property {number[]} [missing] rows without a thumbnail
 * @property {Layer[]} layers
 */

/**
 * @typedef {object} ReportMeta
 * @property {string | null} similarity
 * @property {string | null} target
 * @property {string | null} clip
 * @property {number | null} nImages
 * @property {number | null} nConcepts
 * @property {string} results
 * @property {number} thumbSize
 * @property {number} stripSize
 * @property {number} seed
 * @property {number[]} bands
 */

/**
 * @typedef {object} Hit a search result
 * @property {number} li
 * @property {number} u
 * @property {number} kind 3 label equals the query, 2 label contains it, 1 a top concept contains it
 * @property {number} at index of that top concept
 * @property {number} s
 */

(() => {
  // biome-ignore lint/suspicious/noRedundantUseStrict: a classic script (inlined in index.html), not a module
  'use strict';
  const data = /** @type {ReportData | undefined} */ (/** @type {any} */ (window).CLIP_DISSECT_REPORT);
  const root = /** @type {HTMLElement} */ (document.getElementById('app'));
  if (!data) {
    root.innerHTML =
      '<p class="err">data.js did not load: keep index.html, data.js and thumbs/ together in one folder.</p>';
    return;
  }
  const D = data;
  const M = D.meta,
    C = D.concepts,
    LAYERS = D.layers;
  const CL = C.map((c) => String(c).toLowerCase());
  /** @type {Record<number, number>} */
  const MISSING = {};
  (D.missing || []).forEach((r) => {
    MISSING[r] = 1;
  });
  const PAGE = 100;
  const BAND_NAMES = M.bands.map((q) => `top ${q * 100}%`);
  /** @type {Record<string, number>} */
  const byName = {};
  const state = { layer: -1, unit: -1 };

  /** @type {Record<string, string>} */
  const ENTITIES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  /** @param {unknown} s */
  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ENTITIES[c]);
  }
  /** @param {number | null | undefined} x */
  function fmt(x) {
    if (x === null || x === undefined) return '–';
    const a = Math.abs(x);
    return a !== 0 && (a < 0.01 || a >= 10000) ? x.toExponential(2) : x.toFixed(a >= 100 ? 1 : 3);
  }
  const TRUST_WORDS = ['high', 'medium', 'low', 'dead'];
  /** @param {number | null | undefined} x */
  function fmtP(x) {
    return x === null || x === undefined
      ? ''
      : x < 0.001
        ? x.toExponential(1)
        : String(Number(x.toPrecision(2)));
  }
  /** @param {number | null | undefined} x */
  function fmtAct(x) {
    return x === null || x === undefined ? '' : String(x);
  }
  /** @param {number} n */
  function num(n) {
    return Number(n).toLocaleString('en-US');
  }
  /**
   * An element of the page by id (the caller knows it is there).
   * @param {string} id
   * @returns {HTMLElement}
   */
  function el(id) {
    return /** @type {HTMLElement} */ (document.getElementById(id));
  }
  /**
   * A thumbnail, or a placeholder when there is no image (row -1) or no thumbnail.
   * @param {number} row
   * @param {number} size
   * @param {string} [cls]
   */
  function img(row, size, cls) {
    const st = `width:${size}px;height:${size}px`;
    if (row < 0 || row === undefined) return `<div class="ph ${cls || ''}" style="${st}"></div>`;
    const name = D.images[row] || `image ${row}`;
    if (MISSING[row]) return `<div class="ph" style="${st}" title="${esc(name)} (no thumbnail)">?</div>`;
    return `<img src="thumbs/${row}.webp" alt="${esc(name)}" title="${esc(name)} (row ${row})" loading="lazy" decoding="async" style="${st}">`;
  }
  /**
   * @param {number} li
   * @param {number} unit -1: the layer
   */
  function hashOf(li, unit) {
    return `#${encodeURIComponent(LAYERS[li].name)}${unit >= 0 ? `/${unit}` : ''}`;
  }

  // --- per-layer precomputation: rank by score, histogram, frequent labels
  LAYERS.forEach((L, li) => {
    byName[L.name] = li;
    L.isDead = new Uint8Array(L.n);
    L.dead.forEach((u) => {
      L.isDead[u] = 1;
    });
    const live = [];
    for (let u = 0; u < L.n; u++) if (!L.isDead[u] && L.score[u] !== null) live.push(u);
    const score = /** @type {number[]} */ (L.score); // read at live neurons only: not null
    live.sort((a, b) => score[b] - score[a] || a - b);
    L.rank = new Int32Array(L.n).fill(-1);
    live.forEach((u, r) => {
      L.rank[u] = r;
    });
    L.live = live.length;
    L.byScore = live;
    let lo = Infinity,
      hi = -Infinity;
    live.forEach((u) => {
      lo = Math.min(lo, score[u]);
      hi = Math.max(hi, score[u]);
    });
    L.lo = lo;
    L.hi = hi;
    /** @type {Record<string, number>} */
    const counts = {};
    live.forEach((u) => {
      counts[L.label[u]] = (counts[L.label[u]] || 0) + 1;
    });
    L.freq = Object.keys(counts)
      .map((c) => /** @type {[number, number]} */ ([Number(c), counts[c]]))
      .sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    L.sort = { key: 'unit', dir: 1 };
    L.filter = -1;
    L.page = 0;
    L.order = null;
  });

  /**
   * The neurons in the table's order (filtered, sorted); sets L.pos.
   * @param {Layer} L
   * @returns {number[]}
   */
  function orderOf(L) {
    if (L.order) return L.order;
    let o = [];
    for (let u = 0; u < L.n; u++) o.push(u);
    const k = L.sort.key,
      d = L.sort.dir,
      T = L.trust;
    if (T && L.filter >= 0) o = o.filter((u) => T.badge[u] === L.filter);
    /** @param {number} u */
    function val(u) {
      const T = /** @type {TrustData} */ (L.trust);
      if (k === 'trust') return -(T.badge[u] * 2) + T.stability[u];
      if (k === 'stability') return T.badge[u] === 3 ? -Infinity : T.stability[u];
      if (k === 'p') return T.p[u] === null ? -Infinity : -T.p[u];
      return T.sim[u] === null ? -Infinity : T.sim[u];
    }
    if (T && (k === 'trust' || k === 'stability' || k === 'p' || k === 'sim'))
      o.sort((a, b) => -d * (val(a) - val(b)) || a - b);
    else if (k === 'score')
      o.sort((a, b) => {
        const sa = L.isDead[a] || L.score[a] === null ? -Infinity : L.score[a];
        const sb = L.isDead[b] || L.score[b] === null ? -Infinity : L.score[b];
        return d * (sa - sb) || a - b;
      });
    else if (k === 'label')
      o.sort(
        (a, b) =>
          d * (CL[L.label[a]] < CL[L.label[b]] ? -1 : CL[L.label[a]] > CL[L.label[b]] ? 1 : 0) || a - b,
      );
    else if (d < 0) o.reverse();
    L.order = o;
    L.pos = new Int32Array(L.n).fill(-1);
    o.forEach((u, i) => {
      L.pos[u] = i;
    });
    return o;
  }

  // --- histogram of winning scores (SVG); marker = a score to point at
  /**
   * @param {Layer} L
   * @param {number} w
   * @param {number} h
   * @param {number | null} marker
   */
  function hist(L, w, h, marker) {
    const bins = 30,
      c = new Array(bins).fill(0);
    const span = L.hi - L.lo || 1;
    const score = /** @type {number[]} */ (L.score); // read at live neurons only: not null
    L.byScore.forEach((u) => {
      c[Math.min(bins - 1, Math.floor(((score[u] - L.lo) / span) * bins))]++;
    });
    let mx = Math.max.apply(null, c) || 1,
      bw = w / bins,
      s = '';
    const mb =
      marker === null || marker === undefined
        ? -1
        : Math.min(bins - 1, Math.floor(((marker - L.lo) / span) * bins));
    for (let i = 0; i < bins; i++) {
      const bh = Math.round((c[i] / mx) * (h - 14));
      s +=
        '<rect class="b' +
        (i === mb ? ' on' : '') +
        '" x="' +
        (i * bw + 0.5).toFixed(1) +
        '" y="' +
        (h - 12 - bh) +
        '" width="' +
        (bw - 1).toFixed(1) +
        '" height="' +
        bh +
        '"><title>' +
        c[i] +
        ' neurons</title></rect>';
    }
    if (marker !== null && mb >= 0) {
      const x = (((marker - L.lo) / span) * w).toFixed(1);
      s += `<line class="mk" x1="${x}" x2="${x}" y1="0" y2="${h - 12}"></line>`;
    }
    s +=
      '<text x="0" y="' +
      (h - 1) +
      '">' +
      fmt(L.lo) +
      '</text><text x="' +
      w +
      '" y="' +
      (h - 1) +
      '" text-anchor="end">' +
      fmt(L.hi) +
      '</text>';
    if (L.live === 0) s = '<text x="0" y="20">no live neurons</text>';
    return (
      '<svg class="hist" width="' +
      w +
      '" height="' +
      h +
      '" viewBox="0 0 ' +
      w +
      ' ' +
      h +
      '">' +
      s +
      '</svg>'
    );
  }

  // --- tabs
  function renderTabs() {
    let s = `<a href="#" class="${state.layer < 0 ? 'on' : ''}">Overview</a>`;
    LAYERS.forEach((L, li) => {
      s +=
        '<a href="' +
        hashOf(li, -1) +
        '" class="' +
        (state.layer === li ? 'on' : '') +
        '">' +
        esc(L.name) +
        ' <small>' +
        num(L.n) +
        '</small></a>';
    });
    el('tabs').innerHTML = s;
  }

  /**
   * @param {Layer} L
   * @param {number} k
   */
  function freqChips(L, k) {
    return (
      '<div class="chips">' +
      L.freq
        .slice(0, k)
        .map(
          (f) =>
            '<span class="chip" data-q="' +
            esc(C[f[0]]) +
            '" title="search for ' +
            esc(C[f[0]]) +
            '">' +
            esc(C[f[0]]) +
            ' <span class="muted">' +
            f[1] +
            '</span></span>',
        )
        .join('') +
      '</div>'
    );
  }

  function renderOverview() {
    let s = '<div class="overview">';
    LAYERS.forEach((L, li) => {
      s +=
        '<div class="card"><h2><a href="' +
        hashOf(li, -1) +
        '">' +
        esc(L.name) +
        '</a> <span class="muted small">' +
        num(L.n) +
        ' neurons' +
        (L.dead.length ? ` · <span class="flag">${L.dead.length} dead</span>` : ' · no dead neurons') +
        '</span></h2>';
      s += `<h3>Winning scores</h3>${hist(L, 370, 70, null)}`;
      s += `<h3>Most frequent labels</h3>${freqChips(L, 12)}`;
      s += trustSummary(L);
      s += '<h3>Most interpretable neurons (highest scores)</h3><div class="best">';
      L.byScore.slice(0, 5).forEach((u) => {
        s +=
          '<a href="' +
          hashOf(li, u) +
          '">' +
          img(L.nImg ? L.img[u * L.nImg] : -1, 72) +
          '<b>' +
          esc(C[L.label[u]]) +
          '</b><br><span class="muted">unit ' +
          u +
          ' · ' +
          fmt(L.score[u]) +
          '</span></a>';
      });
      s += '</div></div>';
    });
    s += '</div>';
    el('view').innerHTML = s;
  }

  function renderLayer() {
    const L = LAYERS[state.layer];
    el('view').innerHTML =
      '<div class="layout"><div><div class="card" id="lsum"></div><div class="card" style="margin-top:12px"><div id="twrap"><table id="neurons"><thead id="thead"></thead><tbody id="tbody"></tbody></table></div><div class="pager" id="pager"></div></div></div><div id="detail" class="card"></div></div>';
    el('lsum').innerHTML =
      '<div style="display:flex;gap:16px;align-items:flex-start"><div><h2>' +
      esc(L.name) +
      '</h2><div class="small muted">' +
      num(L.n) +
      ' neurons' +
      (L.dead.length ? ` · <span class="flag">${L.dead.length} dead</span>` : '') +
      '</div><h3>Winning scores</h3>' +
      hist(L, 220, 54, null) +
      '</div><div style="flex:1"><h3 style="margin-top:0">Most frequent labels</h3>' +
      freqChips(L, 10) +
      '</div></div>' +
      (L.trust
        ? trustSummary(L) +
          '<div class="tfilter">Show <select id="tfilter"><option value="-1">all neurons</option><option value="0">high trust</option><option value="1">medium trust</option><option value="2">low trust</option><option value="3">dead</option></select></div>'
        : '');
    if (L.trust) {
      const filter = /** @type {HTMLSelectElement} */ (el('tfilter'));
      filter.value = String(L.filter);
      filter.addEventListener('change', () => {
        L.filter = Number(filter.value);
        L.order = null;
        L.page = 0;
        renderTable();
      });
    }
    renderTable();
    renderDetail();
  }

  function renderTable() {
    const L = LAYERS[state.layer];
    const o = orderOf(L);
    const T = L.trust,
      shown = o.length;
    const pages = Math.max(1, Math.ceil(shown / PAGE));
    L.page = Math.max(0, Math.min(L.page, pages - 1));
    /**
     * @param {string} key
     * @param {string} text
     */
    function th(key, text) {
      const arr = L.sort.key === key ? (L.sort.dir > 0 ? ' ▲' : ' ▼') : '';
      return `<th class="sort" data-sort="${key}">${text}<span class="arr">${arr}</span></th>`;
    }
    el('thead').innerHTML =
      '<tr>' +
      th('unit', 'Unit') +
      '<th></th>' +
      th('label', 'Label') +
      th('score', 'Score') +
      (T ? th('trust', 'Trust') + th('stability', 'Stability') + th('p', 'p') + th('sim', 'Sim. r') : '') +
      '<th>Top-' +
      L.nTop +
      ' concepts</th></tr>';
    const span = L.hi - L.lo || 1,
      rows = [];
    for (let i = L.page * PAGE; i < Math.min(shown, (L.page + 1) * PAGE); i++) {
      const u = o[i],
        dead = L.isDead[u],
        t5 = [];
      for (let t = 0; t < L.nTop; t++) {
        const c = L.top[u * L.nTop + t];
        if (c >= 0) t5.push(`${esc(C[c])} <span class="muted">${fmt(L.topScore[u * L.nTop + t])}</span>`);
      }
      const sc = L.score[u];
      const bw = dead || sc === null ? 0 : Math.max(2, Math.round(((sc - L.lo) / span) * 100));
      rows.push(
        '<tr data-unit="' +
          u +
          '" class="' +
          (dead ? 'dead' : '') +
          (u === state.unit ? ' sel' : '') +
          '">' +
          '<td class="unit">' +
          u +
          '</td><td class="th">' +
          img(L.nImg ? L.img[u * L.nImg] : -1, 32) +
          '</td>' +
          '<td class="lab" title="' +
          esc(C[L.label[u]]) +
          '">' +
          esc(C[L.label[u]]) +
          (dead ? '<span class="flag">dead</span>' : '') +
          '</td>' +
          '<td class="sc">' +
          fmt(sc) +
          '<div class="bar" style="width:' +
          bw +
          '%"></div></td>' +
          (T
            ? '<td class="tr"><span class="tb tb' +
              T.badge[u] +
              '"></span>' +
              TRUST_WORDS[T.badge[u]] +
              '</td><td class="tr">' +
              (T.badge[u] === 3 ? '' : `${Math.round(T.stability[u] * 100)}%`) +
              '</td><td class="tr">' +
              fmtP(T.p[u]) +
              '</td><td class="tr">' +
              fmt(T.sim[u]) +
              '</td>'
            : '') +
          '<td class="t5">' +
          t5.join(', ') +
          '</td></tr>',
      );
    }
    el('tbody').innerHTML = rows.join('');
    el('pager').innerHTML =
      pages > 1
        ? '<span class="muted">' +
          num(L.page * PAGE + 1) +
          '–' +
          num(Math.min(shown, (L.page + 1) * PAGE)) +
          ' of ' +
          num(shown) +
          '</span>' +
          '<button data-page="0"' +
          (L.page === 0 ? ' disabled' : '') +
          '>«</button><button data-page="' +
          (L.page - 1) +
          '"' +
          (L.page === 0 ? ' disabled' : '') +
          '>‹ prev</button>' +
          '<span>page ' +
          (L.page + 1) +
          ' / ' +
          pages +
          '</span>' +
          '<button data-page="' +
          (L.page + 1) +
          '"' +
          (L.page >= pages - 1 ? ' disabled' : '') +
          '>next ›</button><button data-page="' +
          (pages - 1) +
          '"' +
          (L.page >= pages - 1 ? ' disabled' : '') +
          '>»</button>'
        : `<span class="muted">${num(shown)}${shown === L.n ? '' : ` of ${num(L.n)}`} neurons</span>`;
  }

  /**
   * @param {Layer} L
   * @param {number} u
   */
  function trustVerdict(L, u) {
    const T = /** @type {TrustData} */ (L.trust),
      b = T.badge[u];
    let s =
      '<span class="badge ' +
      ['b-strong', 'b-mid', 'b-weak', 'b-dead'][b] +
      '" title="high: stable in at least 80% of the bootstrap resamples and p ≤ 0.01; low: stable in under half or p > 0.05; else medium">' +
      TRUST_WORDS[b] +
      ' trust</span>';
    s +=
      '<span class="small">stability <b>' +
      Math.round(T.stability[u] * 100) +
      '%</b>' +
      (T.runnerUp[u] >= 0
        ? ` (runner-up ${esc(C[T.runnerUp[u]])} ${Math.round(T.runnerUpFraction[u] * 100)}%)`
        : '') +
      ' · p <b>' +
      fmtP(T.p[u]) +
      '</b> · z ' +
      fmt(T.z[u]) +
      ' · simulation r <b>' +
      fmt(T.sim[u]) +
      '</b> · score ' +
      fmt(L.score[u]) +
      '</span>';
    return s;
  }
  /**
   * @param {Layer} L
   * @param {number} u
   */
  function trustDetail(L, u) {
    const T = L.trust;
    if (!T || L.isDead[u]) return '';
    let names = ['correlation', 'cosine', 'AUPRC', 'F1', 'IoU'],
      s = '<h3>Which labels to trust</h3><table class="tmet"><tr>';
    names.forEach((n) => {
      s += `<td class="muted">${n}</td>`;
    });
    s += '</tr><tr>';
    names.forEach((_n, i) => {
      s += `<td><b>${fmt(T.metrics[u * 5 + i])}</b></td>`;
    });
    s +=
      '</tr></table><div class="small muted">on the ' +
      (T.settings ? `${T.settings.heldOutImages} held-out` : 'held-out') +
      ' images, presence from ' +
      (T.settings ? esc(T.settings.presence) : '?') +
      ' labels; fit-half label <b>' +
      esc(C[T.fitLabel[u]]) +
      '</b>' +
      (T.fitLabel[u] === L.label[u]
        ? ' (= the label)'
        : ' (differs from the label: the figures judge the fit-half label)') +
      '</div>';
    return s;
  }
  /** @param {Layer} L */
  function trustSummary(L) {
    const S = L.trust?.summary;
    if (!S) return '';
    return (
      '<div class="small">Trust: <span class="tb tb0"></span>high ' +
      num(S.badges.high) +
      ' · <span class="tb tb1"></span>medium ' +
      num(S.badges.medium) +
      ' · <span class="tb tb2"></span>low ' +
      num(S.badges.low) +
      ' · stability mean ' +
      fmt(S.stability.mean) +
      ' · significant ' +
      (S.significant * 100).toFixed(1) +
      '% · simulation r mean ' +
      fmt(S.simulation.mean) +
      '</div>'
    );
  }
  /**
   * @param {Layer} L
   * @param {number} u
   */
  function verdict(L, u) {
    if (L.trust && !L.isDead[u]) return trustVerdict(L, u);
    if (L.isDead[u])
      return '<span class="badge b-dead">dead neuron</span><span class="small muted">its activation is constant over the probe images: the label means nothing</span>';
    if (L.rank[u] < 0) return '<span class="badge b-dead">no score</span>';
    const r = L.rank[u] + 1,
      p = r / L.live,
      pct = Math.max(1, Math.ceil(p * 100));
    const cls = p <= 0.1 ? 'b-strong' : p <= 0.5 ? 'b-mid' : 'b-weak';
    const word = p <= 0.1 ? 'strong match' : p <= 0.5 ? 'fair match' : 'weak match';
    return (
      '<span class="badge ' +
      cls +
      '" title="compared with the other neurons of ' +
      esc(L.name) +
      ': top 10% strong, top half fair, bottom half weak">' +
      word +
      '</span><span class="small">score <b>' +
      fmt(L.score[u]) +
      '</b> · rank <b>' +
      num(r) +
      '</b> of ' +
      num(L.live) +
      ' in ' +
      esc(L.name) +
      ' (' +
      (p <= 0.5 ? `top ${pct}%` : `bottom ${Math.max(1, 100 - pct + 1)}%`) +
      ' by score)</span>'
    );
  }

  function renderDetail() {
    const L = LAYERS[state.layer],
      u = state.unit,
      box = el('detail');
    if (!box) return;
    if (u < 0 || u >= L.n) {
      box.innerHTML =
        '<h2>' +
        esc(L.name) +
        '</h2><p class="muted">Click a neuron (or press <kbd>j</kbd>) to see its label, top concepts and the images that activate it most.</p>' +
        '<p class="muted small">Sort by score to see the most interpretable neurons first.</p>';
      return;
    }
    const shown = orderOf(L).length,
      pos = L.pos[u];
    let s =
      '<div class="dhead"><span class="where">' +
      esc(L.name) +
      ' · unit ' +
      u +
      '</span><span class="nav"><span class="small muted">' +
      (pos < 0 ? 'not shown' : `${num(pos + 1)} / ${num(shown)}`) +
      '</span>' +
      '<button id="prev" title="previous neuron (k)"' +
      (pos <= 0 ? ' disabled' : '') +
      '>‹ prev</button><button id="next" title="next neuron (j)"' +
      (pos === shown - 1 ? ' disabled' : '') +
      '>next ›</button></span></div>';
    s += `<div class="label" id="dlabel">${esc(C[L.label[u]])}</div>`;
    s += `<div class="verdict">${verdict(L, u)}</div>`;
    s += trustDetail(L, u);
    s +=
      '<div style="display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap"><div><h3>Top concepts (' +
      esc(M.similarity || 'similarity') +
      ' score)</h3><table class="concepts">';
    // a missing top score (null) counts as 0 here, as Math.min / Math.max take it
    let ts = /** @type {number[]} */ ([]),
      t;
    for (t = 0; t < L.nTop; t++) ts.push(/** @type {number} */ (L.topScore[u * L.nTop + t]));
    const tl = Math.min.apply(null, ts.concat([L.lo])),
      tspan = Math.max.apply(null, ts.concat([L.hi])) - tl || 1;
    for (t = 0; t < L.nTop; t++) {
      const c = L.top[u * L.nTop + t];
      if (c < 0) continue;
      const v = L.topScore[u * L.nTop + t];
      s +=
        '<tr><td>' +
        esc(C[c]) +
        '</td><td style="width:160px"><div class="cbar" style="width:' +
        (v === null ? 0 : Math.max(2, Math.round(((v - tl) / tspan) * 100))) +
        '%"></div></td><td class="small">' +
        fmt(v) +
        '</td></tr>';
    }
    s +=
      '</table></div><div><h3>Where this score falls in ' +
      esc(L.name) +
      '</h3>' +
      hist(L, 230, 64, L.isDead[u] ? null : L.score[u]) +
      '</div></div>';
    const big = Math.min(M.thumbSize, 120);
    s +=
      '<h3>Top ' +
      L.nImg +
      ' activating images <span class="muted small">(activation)</span></h3><div class="imgs" id="topimgs">';
    for (t = 0; t < L.nImg; t++) {
      const row = L.img[u * L.nImg + t],
        a = L.act[u * L.nImg + t];
      s +=
        '<figure data-row="' +
        row +
        '">' +
        img(row, big) +
        '<figcaption>#' +
        (t + 1) +
        (a === null ? '' : ` · <b>${fmtAct(a)}</b>`) +
        '</figcaption></figure>';
    }
    s += '</div>';
    if (L.cut.length) {
      const nb = M.bands.length,
        small = Math.min(M.thumbSize, 64);
      s +=
        '<h3>Random images from the top of its activations <span class="muted small">(seed ' +
        M.seed +
        ')</span></h3>';
      for (let b = 0; b < nb; b++) {
        let cells = '';
        for (let k = 0; k < M.stripSize; k++) {
          const r2 = L.strip[(u * nb + b) * M.stripSize + k];
          if (r2 >= 0) cells += img(r2, small);
        }
        s +=
          '<div class="strip"><div class="bl"><b>' +
          BAND_NAMES[b] +
          '</b><br>act ≥ ' +
          fmtAct(L.cut[u * nb + b]) +
          '</div>' +
          cells +
          '</div>';
      }
    }
    box.innerHTML = s;
  }

  // --- navigation
  // go() renders at once (so that quick key repeats step from the new neuron) and sets the hash; the
  // hashchange that follows finds the view rendered already
  /** @type {string | null} */
  let routed = null;
  /**
   * @param {number} li
   * @param {number} unit
   */
  function go(li, unit) {
    const h = li < 0 ? '#' : hashOf(li, unit);
    if (location.hash !== h) location.hash = h;
    route();
  }
  function route() {
    if (location.hash === routed) return;
    routed = location.hash;
    const h = decodeURIComponent(location.hash.slice(1));
    let li = -1,
      unit = -1;
    if (h) {
      if (byName[h] !== undefined) li = byName[h];
      else {
        const cut = h.lastIndexOf('/');
        if (cut > 0 && byName[h.slice(0, cut)] !== undefined && /^\d+$/.test(h.slice(cut + 1))) {
          li = byName[h.slice(0, cut)];
          unit = Math.min(Number(h.slice(cut + 1)), LAYERS[li].n - 1);
        }
      }
    }
    const sameLayer = li === state.layer && li >= 0 && el('tbody');
    state.layer = li;
    state.unit = unit;
    if (li < 0) {
      renderTabs();
      renderOverview();
    } else {
      const L = LAYERS[li];
      if (unit >= 0) {
        orderOf(L);
        if (L.pos[unit] < 0) {
          L.filter = -1;
          L.order = null;
          orderOf(L);
        }
        L.page = Math.floor(L.pos[unit] / PAGE);
      }
      if (sameLayer) {
        renderTable();
        renderDetail();
      } else {
        renderTabs();
        renderLayer();
      }
      const tr = /** @type {HTMLElement | null} */ (document.querySelector('#tbody tr.sel')),
        wrap = el('twrap');
      if (tr && wrap) {
        const top = tr.getBoundingClientRect().top - wrap.getBoundingClientRect().top + wrap.scrollTop,
          th = 30;
        if (top - th < wrap.scrollTop) wrap.scrollTop = top - th;
        else if (top + tr.offsetHeight > wrap.scrollTop + wrap.clientHeight)
          wrap.scrollTop = top + tr.offsetHeight - wrap.clientHeight;
      }
    }
    document.title =
      (li < 0 ? 'Overview' : LAYERS[li].name + (unit >= 0 ? `/${unit} ${C[LAYERS[li].label[unit]]}` : '')) +
      ' · CLIP-Dissect report';
  }
  /** @param {number} d */
  function step(d) {
    if (state.layer < 0) return;
    const L = LAYERS[state.layer],
      o = orderOf(L);
    const i = state.unit < 0 || L.pos[state.unit] < 0 ? (d > 0 ? 0 : o.length - 1) : L.pos[state.unit] + d;
    if (i >= 0 && i < o.length) go(state.layer, o[i]);
  }

  // --- search across layers
  /** @type {Hit[]} */
  let hits = [],
    hsel = 0;
  /** @param {string} q */
  function search(q) {
    q = q.trim().toLowerCase();
    const box = el('results');
    hits = [];
    hsel = 0;
    if (!q) {
      box.className = '';
      box.innerHTML = '';
      return;
    }
    LAYERS.forEach((L, li) => {
      for (let u = 0; u < L.n; u++) {
        let lab = CL[L.label[u]],
          kind = 0,
          at = -1;
        if (lab === q) kind = 3;
        else if (lab.indexOf(q) >= 0) kind = 2;
        else
          for (let t = 1; t < L.nTop; t++) {
            const c = L.top[u * L.nTop + t];
            if (c >= 0 && CL[c].indexOf(q) >= 0) {
              kind = 1;
              at = t;
              break;
            }
          }
        if (kind)
          hits.push({
            li: li,
            u: u,
            kind: kind,
            at: at,
            s: L.isDead[u] ? -Infinity : (L.score[u] ?? -Infinity),
          });
      }
    });
    hits.sort((a, b) => b.kind - a.kind || b.s - a.s || a.li - b.li || a.u - b.u);
    /** @type {Record<number, number>} */
    const nl = {};
    hits.forEach((h) => {
      nl[h.li] = 1;
    });
    /** @param {string} s */
    const hl = (s) => {
      const i = s.toLowerCase().indexOf(q);
      return i < 0
        ? esc(s)
        : esc(s.slice(0, i)) +
            '<mark>' +
            esc(s.slice(i, i + q.length)) +
            '</mark>' +
            esc(s.slice(i + q.length));
    };
    let s =
      '<div class="count">' +
      (hits.length
        ? num(hits.length) +
          ' neuron' +
          (hits.length === 1 ? '' : 's') +
          ' in ' +
          Object.keys(nl).length +
          ' layer' +
          (Object.keys(nl).length === 1 ? '' : 's') +
          ' (label first, then top-' +
          LAYERS[0].nTop +
          ')' +
          (hits.length > 200 ? ', first 200 shown' : '')
        : `no neuron has "${esc(q)}" in its label or top concepts`) +
      '</div>';
    hits.slice(0, 200).forEach((h, i) => {
      const L = LAYERS[h.li];
      s +=
        '<div class="r' +
        (i === 0 ? ' sel' : '') +
        '" data-i="' +
        i +
        '"><span class="where">' +
        esc(L.name) +
        '/' +
        h.u +
        '</span><span>' +
        hl(C[L.label[h.u]]) +
        (L.isDead[h.u] ? '<span class="flag">dead</span>' : '') +
        '</span><span class="why">' +
        (h.kind === 1 ? `top-${h.at + 1}: ${hl(C[L.top[h.u * L.nTop + h.at]])} · ` : '') +
        fmt(L.score[h.u]) +
        '</span></div>';
    });
    box.innerHTML = s;
    box.className = 'open';
  }
  /** @param {number} i */
  function openHit(i) {
    const h = hits[i];
    if (!h) return;
    el('results').className = '';
    el('search').blur();
    go(h.li, h.u);
  }

  // --- shell
  root.innerHTML =
    '<header><h1>CLIP-Dissect report</h1><div class="meta" id="meta"></div><div id="searchbox"><input id="search" type="search" placeholder="Search a concept across layers  ( / )" autocomplete="off" spellcheck="false"><div id="results"></div></div></header>' +
    '<nav id="tabs"></nav><main id="view"></main>' +
    '<footer>Keys: <kbd>j</kbd>/<kbd>↓</kbd> next neuron · <kbd>k</kbd>/<kbd>↑</kbd> previous · <kbd>[</kbd>/<kbd>]</kbd> previous / next layer · <kbd>/</kbd> search · <kbd>Esc</kbd> close search. ' +
    'Score: the ' +
    esc(M.similarity || 'similarity') +
    ' match between a concept and the neuron’s most activating images; higher is better, compare within a layer. Links like <code>#layer4/12</code> open a neuron. Made by clip-dissect ' +
    esc(D.version) +
    '.</footer>';
  const meta = [];
  if (M.target)
    meta.push(`target ${esc(String(M.target).split(/[\\/]/).filter(Boolean).slice(-2).join('/'))}`);
  if (M.clip) meta.push(`CLIP ${esc(String(M.clip).split(/[\\/]/).filter(Boolean).slice(-1)[0])}`);
  if (M.similarity) meta.push(esc(M.similarity));
  if (M.nImages) meta.push(`${num(M.nImages)} probe images`);
  if (M.nConcepts) meta.push(`${num(M.nConcepts)} concepts`);
  meta.push(
    LAYERS.length +
      ' layer' +
      (LAYERS.length === 1 ? '' : 's') +
      ', ' +
      num(LAYERS.reduce((s, L) => s + L.n, 0)) +
      ' neurons',
  );
  el('meta').innerHTML = meta.join(' · ');
  el('meta').title = M.results || '';

  const searchBox = /** @type {HTMLInputElement} */ (el('search'));
  document.addEventListener('click', (e) => {
    const t = /** @type {HTMLElement} */ (e.target);
    const chip = t.closest?.('.chip');
    if (chip) {
      const q = chip.getAttribute('data-q') || '';
      searchBox.value = q;
      search(q);
      searchBox.focus();
      return;
    }
    const r = t.closest?.('#results .r');
    if (r) {
      openHit(Number(r.getAttribute('data-i')));
      return;
    }
    if (!t.closest?.('#searchbox')) el('results').className = '';
    const th = t.closest?.('th[data-sort]');
    if (th) {
      const L = LAYERS[state.layer],
        k = /** @type {string} */ (th.getAttribute('data-sort')); // th[data-sort] has it
      L.sort = { key: k, dir: L.sort.key === k ? -L.sort.dir : k === 'score' ? -1 : 1 };
      L.order = null;
      if (state.unit >= 0 && orderOf(L) && L.pos[state.unit] >= 0)
        L.page = Math.floor(L.pos[state.unit] / PAGE);
      else L.page = 0;
      renderTable();
      renderDetail();
      return;
    }
    const pb = t.closest?.('button[data-page]');
    if (pb) {
      LAYERS[state.layer].page = Number(pb.getAttribute('data-page'));
      renderTable();
      return;
    }
    const tr = t.closest?.('#tbody tr');
    if (tr) {
      go(state.layer, Number(tr.getAttribute('data-unit')));
      return;
    }
    if (t.id === 'next') step(1);
    if (t.id === 'prev') step(-1);
  });
  searchBox.addEventListener('input', () => {
    search(searchBox.value);
  });
  searchBox.addEventListener('focus', () => {
    if (searchBox.value) search(searchBox.value);
  });
  document.addEventListener('keydown', (e) => {
    if (e.target === searchBox) {
      const rs = document.querySelectorAll('#results .r');
      if (e.key === 'Escape') {
        el('results').className = '';
        searchBox.blur();
      } else if (e.key === 'Enter') openHit(hsel);
      else if ((e.key === 'ArrowDown' || e.key === 'ArrowUp') && rs.length) {
        e.preventDefault();
        if (rs[hsel]) rs[hsel].classList.remove('sel');
        hsel = Math.max(0, Math.min(rs.length - 1, hsel + (e.key === 'ArrowDown' ? 1 : -1)));
        rs[hsel].classList.add('sel');
        rs[hsel].scrollIntoView({ block: 'nearest' });
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === 'j' || e.key === 'ArrowDown') {
      e.preventDefault();
      step(1);
    } else if (e.key === 'k' || e.key === 'ArrowUp') {
      e.preventDefault();
      step(-1);
    } else if (e.key === ']' || e.key === '[') {
      const li = state.layer + (e.key === ']' ? 1 : -1);
      if (li >= -1 && li < LAYERS.length) go(li, -1);
    } else if (e.key === '/') {
      e.preventDefault();
      searchBox.focus();
      searchBox.select();
    }
  });
  window.addEventListener('hashchange', route);
  route();
  /** @type {any} */ (window).__reportReady = performance.now();
})();
