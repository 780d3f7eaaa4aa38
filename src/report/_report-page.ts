/**
 * The report page (index.html): HTML, CSS and vanilla JavaScript in one string. The data comes from
 * `data.js` beside it (`window.CLIP_DISSECT_REPORT`, see html-report.ts); nothing is fetched from a network
 * (a Content-Security-Policy forbids it), so the page works from file:// and offline.
 *
 * Views (URL hash): `#` overview of every layer; `#<layer>` a layer's table; `#<layer>/<unit>` a neuron.
 * Keys: j / ↓ next neuron, k / ↑ previous (in the table's order), [ / ] previous / next layer,
 * / search, Esc closes the search.
 *
 * The page code avoids backticks and dollar-brace so that it can live in this template literal.
 */

const CSS = `
*{box-sizing:border-box}
html,body{margin:0;padding:0}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1f2328;background:#f3f4f6}
a{color:#0b5cad;text-decoration:none}
a:hover{text-decoration:underline}
header{background:#1d2330;color:#e8ebf1;padding:8px 16px;display:flex;align-items:center;gap:16px;position:sticky;top:0;z-index:10}
header h1{font-size:16px;margin:0;white-space:nowrap}
header .meta{font-size:12px;color:#aeb6c6;flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
#searchbox{position:relative}
#search{width:300px;padding:6px 10px;border-radius:6px;border:1px solid #4a5468;background:#2b3344;color:#fff;font-size:14px}
#search::placeholder{color:#98a2b6}
#results{position:absolute;right:0;top:36px;width:520px;max-height:70vh;overflow:auto;background:#fff;color:#1f2328;border:1px solid #c9ced8;border-radius:6px;box-shadow:0 8px 24px rgba(0,0,0,.2);display:none}
#results.open{display:block}
#results .count{padding:6px 10px;font-size:12px;color:#59636e;border-bottom:1px solid #e4e7ec}
#results .r{display:flex;gap:8px;padding:5px 10px;cursor:pointer;align-items:baseline}
#results .r:hover,#results .r.sel{background:#e8f0fb}
#results .r .where{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;color:#59636e;min-width:110px}
#results .r .why{font-size:12px;color:#59636e;margin-left:auto;white-space:nowrap}
mark{background:#ffe58a;color:inherit;padding:0}
nav{display:flex;gap:2px;padding:6px 16px 0;background:#e5e8ee;border-bottom:1px solid #c9ced8;flex-wrap:wrap}
nav a{padding:6px 12px;border-radius:6px 6px 0 0;color:#333;font-weight:500}
nav a.on{background:#fff;border:1px solid #c9ced8;border-bottom-color:#fff;margin-bottom:-1px}
nav a small{color:#6a737d;font-weight:400}
main{padding:12px 16px}
.layout{display:grid;grid-template-columns:minmax(520px,46%) 1fr;gap:14px;align-items:start}
@media (max-width:1100px){.layout{grid-template-columns:1fr}}
.card{background:#fff;border:1px solid #d8dce3;border-radius:8px;padding:12px 14px}
.card h2{font-size:15px;margin:0 0 8px}
.card h3{font-size:13px;margin:12px 0 6px;color:#444}
.muted{color:#6a737d}
.small{font-size:12px}
.overview{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:12px}
.chips{display:flex;flex-wrap:wrap;gap:4px}
.chip{background:#eef1f5;border:1px solid #d8dce3;border-radius:12px;padding:1px 8px;font-size:12px;cursor:pointer}
.chip:hover{background:#e0e7f3}
.best{display:grid;grid-template-columns:repeat(5,1fr);gap:6px}
.best a{display:block;font-size:11px;color:#1f2328;line-height:1.25}
.best img,.best .ph{width:100%;aspect-ratio:1;object-fit:cover;border-radius:4px;display:block;background:#dde1e7}
table{border-collapse:collapse;width:100%}
th,td{padding:3px 6px;text-align:left;border-bottom:1px solid #eceef2;vertical-align:middle}
th{font-size:12px;color:#59636e;background:#f7f8fa;position:sticky;top:0;user-select:none}
th.sort{cursor:pointer}
th.sort:hover{color:#0b5cad}
th .arr{font-size:10px}
tbody tr{cursor:pointer;height:38px}
tbody tr:hover{background:#f2f6fc}
tbody tr.sel{background:#dbe8fa}
tr.dead td{color:#98a0aa}
td.unit{font-family:ui-monospace,Menlo,Consolas,monospace;text-align:right;width:56px}
td.th img,td.th .ph{width:32px;height:32px;object-fit:cover;border-radius:3px;display:block;background:#dde1e7}
td.lab{font-weight:600;max-width:180px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
td.sc{width:90px;font-variant-numeric:tabular-nums}
td.sc .bar{height:3px;background:#3b82c4;border-radius:2px;margin-top:2px}
td.tr{font-size:12px;font-variant-numeric:tabular-nums;white-space:nowrap}
.tb{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px;vertical-align:-1px}
.tb0{background:#1d7f3a}.tb1{background:#b7791f}.tb2{background:#b42318}.tb3{background:#98a0aa}
.tfilter{font-size:12px;margin:6px 0}
.tmet td{border:none;padding:1px 8px 1px 0;font-size:12px;font-variant-numeric:tabular-nums}
td.t5{font-size:12px;color:#59636e;max-width:260px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.flag{display:inline-block;font-size:11px;font-weight:600;padding:0 6px;border-radius:8px;background:#f1d5d5;color:#8a1f1f;margin-left:4px}
.pager{display:flex;gap:6px;align-items:center;justify-content:flex-end;padding-top:8px;font-size:12px}
button{font:inherit;font-size:12px;padding:3px 9px;border:1px solid #c9ced8;background:#fff;border-radius:5px;cursor:pointer}
button:hover:not(:disabled){background:#eef3fa}
button:disabled{opacity:.4;cursor:default}
#detail{position:sticky;top:56px}
#twrap{max-height:calc(100vh - 290px);min-height:240px;overflow:auto;position:relative}
.dhead{display:flex;align-items:center;gap:8px}
.dhead .where{font-family:ui-monospace,Menlo,Consolas,monospace;color:#59636e;font-size:13px}
.dhead .nav{margin-left:auto;display:flex;gap:4px;align-items:center}
.label{font-size:28px;font-weight:700;margin:4px 0 2px;word-break:break-word}
.verdict{display:flex;gap:10px;align-items:center;flex-wrap:wrap;margin:6px 0}
.badge{font-size:12px;font-weight:700;padding:2px 10px;border-radius:10px;color:#fff}
.b-strong{background:#1d7f3a}.b-mid{background:#b7791f}.b-weak{background:#b42318}.b-dead{background:#6a737d}
.concepts td{border:none;padding:2px 6px}
.concepts .cbar{height:10px;background:#3b82c4;border-radius:2px;min-width:2px}
.concepts tr:first-child .cbar{background:#1d7f3a}
.concepts tr:first-child td{font-weight:700}
.imgs{display:flex;gap:8px;flex-wrap:wrap}
.imgs figure{margin:0;text-align:center;font-size:11px;color:#59636e}
.imgs img,.imgs .ph{display:block;border-radius:4px;object-fit:cover;background:#dde1e7}
.imgs figcaption b{color:#1f2328}
.strip{display:flex;gap:4px;align-items:center;margin:3px 0}
.strip .bl{width:120px;font-size:12px;color:#59636e;flex:none}
.strip img,.strip .ph{display:block;border-radius:3px;object-fit:cover;background:#dde1e7}
.ph{display:flex;align-items:center;justify-content:center;font-size:10px;color:#6a737d}
svg.hist rect.b{fill:#9db8d9}
svg.hist rect.b.on{fill:#1d7f3a}
svg.hist line.mk{stroke:#b42318;stroke-width:2}
svg.hist text{font-size:10px;fill:#6a737d}
footer{padding:8px 16px 16px;font-size:12px;color:#6a737d}
kbd{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px;border:1px solid #c9ced8;border-bottom-width:2px;border-radius:3px;padding:0 4px;background:#fff}
.err{padding:24px;color:#8a1f1f}
`;

const JS = String.raw`
(function () {
  'use strict';
  var D = window.CLIP_DISSECT_REPORT;
  var root = document.getElementById('app');
  if (!D) {
    root.innerHTML = '<p class="err">data.js did not load: keep index.html, data.js and thumbs/ together in one folder.</p>';
    return;
  }
  var M = D.meta, C = D.concepts, LAYERS = D.layers;
  var CL = C.map(function (c) { return String(c).toLowerCase(); });
  var MISSING = {};
  (D.missing || []).forEach(function (r) { MISSING[r] = 1; });
  var PAGE = 100;
  var BAND_NAMES = M.bands.map(function (q) { return 'top ' + (q * 100) + '%'; });
  var byName = {};
  var state = { layer: -1, unit: -1 };

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function fmt(x) {
    if (x === null || x === undefined) return '–';
    var a = Math.abs(x);
    return a !== 0 && (a < 0.01 || a >= 10000) ? x.toExponential(2) : x.toFixed(a >= 100 ? 1 : 3);
  }
  var TRUST_WORDS = ['high', 'medium', 'low', 'dead'];
  function fmtP(x) { return x === null || x === undefined ? '' : x < 0.001 ? x.toExponential(1) : String(Number(x.toPrecision(2))); }
  function fmtAct(x) { return x === null || x === undefined ? '' : String(x); }
  function num(n) { return Number(n).toLocaleString('en-US'); }
  function el(id) { return document.getElementById(id); }
  function img(row, size, cls) {
    var st = 'width:' + size + 'px;height:' + size + 'px';
    if (row < 0 || row === undefined) return '<div class="ph ' + (cls || '') + '" style="' + st + '"></div>';
    var name = D.images[row] || ('image ' + row);
    if (MISSING[row]) return '<div class="ph" style="' + st + '" title="' + esc(name) + ' (no thumbnail)">?</div>';
    return '<img src="thumbs/' + row + '.webp" alt="' + esc(name) + '" title="' + esc(name) + ' (row ' + row + ')" loading="lazy" decoding="async" style="' + st + '">';
  }
  function hashOf(li, unit) {
    return '#' + encodeURIComponent(LAYERS[li].name) + (unit >= 0 ? '/' + unit : '');
  }

  // --- per-layer precomputation: rank by score, histogram, frequent labels
  LAYERS.forEach(function (L, li) {
    byName[L.name] = li;
    L.isDead = new Uint8Array(L.n);
    L.dead.forEach(function (u) { L.isDead[u] = 1; });
    var live = [];
    for (var u = 0; u < L.n; u++) if (!L.isDead[u] && L.score[u] !== null) live.push(u);
    live.sort(function (a, b) { return L.score[b] - L.score[a] || a - b; });
    L.rank = new Int32Array(L.n).fill(-1);
    live.forEach(function (u, r) { L.rank[u] = r; });
    L.live = live.length;
    L.byScore = live;
    var lo = Infinity, hi = -Infinity;
    live.forEach(function (u) { lo = Math.min(lo, L.score[u]); hi = Math.max(hi, L.score[u]); });
    L.lo = lo; L.hi = hi;
    var counts = {};
    live.forEach(function (u) { counts[L.label[u]] = (counts[L.label[u]] || 0) + 1; });
    L.freq = Object.keys(counts).map(function (c) { return [Number(c), counts[c]]; })
      .sort(function (a, b) { return b[1] - a[1] || a[0] - b[0]; });
    L.sort = { key: 'unit', dir: 1 };
    L.filter = -1;
    L.page = 0;
    L.order = null;
  });

  function orderOf(L) {
    if (L.order) return L.order;
    var o = [];
    for (var u = 0; u < L.n; u++) o.push(u);
    var k = L.sort.key, d = L.sort.dir, T = L.trust;
    if (T && L.filter >= 0) o = o.filter(function (u) { return T.badge[u] === L.filter; });
    function val(u) {
      if (k === 'trust') return -(T.badge[u] * 2) + T.stability[u];
      if (k === 'stability') return T.badge[u] === 3 ? -Infinity : T.stability[u];
      if (k === 'p') return T.p[u] === null ? -Infinity : -T.p[u];
      return T.sim[u] === null ? -Infinity : T.sim[u];
    }
    if (T && (k === 'trust' || k === 'stability' || k === 'p' || k === 'sim'))
      o.sort(function (a, b) { return -d * (val(a) - val(b)) || a - b; });
    else if (k === 'score')
      o.sort(function (a, b) {
        var sa = L.isDead[a] || L.score[a] === null ? -Infinity : L.score[a];
        var sb = L.isDead[b] || L.score[b] === null ? -Infinity : L.score[b];
        return d * (sa - sb) || a - b;
      });
    else if (k === 'label')
      o.sort(function (a, b) { return d * (CL[L.label[a]] < CL[L.label[b]] ? -1 : CL[L.label[a]] > CL[L.label[b]] ? 1 : 0) || a - b; });
    else if (d < 0) o.reverse();
    L.order = o;
    L.pos = new Int32Array(L.n).fill(-1);
    o.forEach(function (u, i) { L.pos[u] = i; });
    return o;
  }

  // --- histogram of winning scores (SVG); marker = a score to point at
  function hist(L, w, h, marker) {
    var bins = 30, c = new Array(bins).fill(0);
    var span = L.hi - L.lo || 1;
    L.byScore.forEach(function (u) {
      c[Math.min(bins - 1, Math.floor(((L.score[u] - L.lo) / span) * bins))]++;
    });
    var mx = Math.max.apply(null, c) || 1, bw = w / bins, s = '';
    var mb = marker === null || marker === undefined ? -1 : Math.min(bins - 1, Math.floor(((marker - L.lo) / span) * bins));
    for (var i = 0; i < bins; i++) {
      var bh = Math.round((c[i] / mx) * (h - 14));
      s += '<rect class="b' + (i === mb ? ' on' : '') + '" x="' + (i * bw + 0.5).toFixed(1) + '" y="' + (h - 12 - bh) + '" width="' + (bw - 1).toFixed(1) + '" height="' + bh + '"><title>' + c[i] + ' neurons</title></rect>';
    }
    if (mb >= 0) {
      var x = (((marker - L.lo) / span) * w).toFixed(1);
      s += '<line class="mk" x1="' + x + '" x2="' + x + '" y1="0" y2="' + (h - 12) + '"></line>';
    }
    s += '<text x="0" y="' + (h - 1) + '">' + fmt(L.lo) + '</text><text x="' + w + '" y="' + (h - 1) + '" text-anchor="end">' + fmt(L.hi) + '</text>';
    if (L.live === 0) s = '<text x="0" y="20">no live neurons</text>';
    return '<svg class="hist" width="' + w + '" height="' + h + '" viewBox="0 0 ' + w + ' ' + h + '">' + s + '</svg>';
  }

  // --- tabs
  function renderTabs() {
    var s = '<a href="#" class="' + (state.layer < 0 ? 'on' : '') + '">Overview</a>';
    LAYERS.forEach(function (L, li) {
      s += '<a href="' + hashOf(li, -1) + '" class="' + (state.layer === li ? 'on' : '') + '">' + esc(L.name) + ' <small>' + num(L.n) + '</small></a>';
    });
    el('tabs').innerHTML = s;
  }

  function freqChips(L, k) {
    return '<div class="chips">' + L.freq.slice(0, k).map(function (f) {
      return '<span class="chip" data-q="' + esc(C[f[0]]) + '" title="search for ' + esc(C[f[0]]) + '">' + esc(C[f[0]]) + ' <span class="muted">' + f[1] + '</span></span>';
    }).join('') + '</div>';
  }

  function renderOverview() {
    var s = '<div class="overview">';
    LAYERS.forEach(function (L, li) {
      s += '<div class="card"><h2><a href="' + hashOf(li, -1) + '">' + esc(L.name) + '</a> <span class="muted small">' + num(L.n) + ' neurons' +
        (L.dead.length ? ' · <span class="flag">' + L.dead.length + ' dead</span>' : ' · no dead neurons') + '</span></h2>';
      s += '<h3>Winning scores</h3>' + hist(L, 370, 70, null);
      s += '<h3>Most frequent labels</h3>' + freqChips(L, 12);
      s += trustSummary(L);
      s += '<h3>Most interpretable neurons (highest scores)</h3><div class="best">';
      L.byScore.slice(0, 5).forEach(function (u) {
        s += '<a href="' + hashOf(li, u) + '">' + img(L.nImg ? L.img[u * L.nImg] : -1, 72) + '<b>' + esc(C[L.label[u]]) + '</b><br><span class="muted">unit ' + u + ' · ' + fmt(L.score[u]) + '</span></a>';
      });
      s += '</div></div>';
    });
    s += '</div>';
    el('view').innerHTML = s;
  }

  function renderLayer() {
    var L = LAYERS[state.layer];
    el('view').innerHTML = '<div class="layout"><div><div class="card" id="lsum"></div><div class="card" style="margin-top:12px"><div id="twrap"><table id="neurons"><thead id="thead"></thead><tbody id="tbody"></tbody></table></div><div class="pager" id="pager"></div></div></div><div id="detail" class="card"></div></div>';
    el('lsum').innerHTML = '<div style="display:flex;gap:16px;align-items:flex-start"><div><h2>' + esc(L.name) + '</h2><div class="small muted">' + num(L.n) + ' neurons' +
      (L.dead.length ? ' · <span class="flag">' + L.dead.length + ' dead</span>' : '') + '</div><h3>Winning scores</h3>' + hist(L, 220, 54, null) +
      '</div><div style="flex:1"><h3 style="margin-top:0">Most frequent labels</h3>' + freqChips(L, 10) + '</div></div>' +
      (L.trust ? trustSummary(L) + '<div class="tfilter">Show <select id="tfilter"><option value="-1">all neurons</option><option value="0">high trust</option><option value="1">medium trust</option><option value="2">low trust</option><option value="3">dead</option></select></div>' : '');
    if (L.trust) {
      el('tfilter').value = String(L.filter);
      el('tfilter').addEventListener('change', function (e) {
        L.filter = Number(e.target.value);
        L.order = null;
        L.page = 0;
        renderTable();
      });
    }
    renderTable();
    renderDetail();
  }

  function renderTable() {
    var L = LAYERS[state.layer];
    var o = orderOf(L);
    var T = L.trust, shown = o.length;
    var pages = Math.max(1, Math.ceil(shown / PAGE));
    L.page = Math.max(0, Math.min(L.page, pages - 1));
    function th(key, text) {
      var arr = L.sort.key === key ? (L.sort.dir > 0 ? ' ▲' : ' ▼') : '';
      return '<th class="sort" data-sort="' + key + '">' + text + '<span class="arr">' + arr + '</span></th>';
    }
    el('thead').innerHTML = '<tr>' + th('unit', 'Unit') + '<th></th>' + th('label', 'Label') + th('score', 'Score') +
      (T ? th('trust', 'Trust') + th('stability', 'Stability') + th('p', 'p') + th('sim', 'Sim. r') : '') + '<th>Top-' + L.nTop + ' concepts</th></tr>';
    var span = L.hi - L.lo || 1, rows = [];
    for (var i = L.page * PAGE; i < Math.min(shown, (L.page + 1) * PAGE); i++) {
      var u = o[i], dead = L.isDead[u], t5 = [];
      for (var t = 0; t < L.nTop; t++) {
        var c = L.top[u * L.nTop + t];
        if (c >= 0) t5.push(esc(C[c]) + ' <span class="muted">' + fmt(L.topScore[u * L.nTop + t]) + '</span>');
      }
      var sc = L.score[u];
      var bw = dead || sc === null ? 0 : Math.max(2, Math.round(((sc - L.lo) / span) * 100));
      rows.push('<tr data-unit="' + u + '" class="' + (dead ? 'dead' : '') + (u === state.unit ? ' sel' : '') + '">' +
        '<td class="unit">' + u + '</td><td class="th">' + img(L.nImg ? L.img[u * L.nImg] : -1, 32) + '</td>' +
        '<td class="lab" title="' + esc(C[L.label[u]]) + '">' + esc(C[L.label[u]]) + (dead ? '<span class="flag">dead</span>' : '') + '</td>' +
        '<td class="sc">' + fmt(sc) + '<div class="bar" style="width:' + bw + '%"></div></td>' +
        (T ? '<td class="tr"><span class="tb tb' + T.badge[u] + '"></span>' + TRUST_WORDS[T.badge[u]] + '</td><td class="tr">' + (T.badge[u] === 3 ? '' : Math.round(T.stability[u] * 100) + '%') +
          '</td><td class="tr">' + fmtP(T.p[u]) + '</td><td class="tr">' + fmt(T.sim[u]) + '</td>' : '') + '<td class="t5">' + t5.join(', ') + '</td></tr>');
    }
    el('tbody').innerHTML = rows.join('');
    el('pager').innerHTML = pages > 1
      ? '<span class="muted">' + num(L.page * PAGE + 1) + '–' + num(Math.min(shown, (L.page + 1) * PAGE)) + ' of ' + num(shown) + '</span>' +
        '<button data-page="0"' + (L.page === 0 ? ' disabled' : '') + '>«</button><button data-page="' + (L.page - 1) + '"' + (L.page === 0 ? ' disabled' : '') + '>‹ prev</button>' +
        '<span>page ' + (L.page + 1) + ' / ' + pages + '</span>' +
        '<button data-page="' + (L.page + 1) + '"' + (L.page >= pages - 1 ? ' disabled' : '') + '>next ›</button><button data-page="' + (pages - 1) + '"' + (L.page >= pages - 1 ? ' disabled' : '') + '>»</button>'
      : '<span class="muted">' + num(shown) + (shown === L.n ? '' : ' of ' + num(L.n)) + ' neurons</span>';
  }

  function trustVerdict(L, u) {
    var T = L.trust, b = T.badge[u];
    var s = '<span class="badge ' + ['b-strong', 'b-mid', 'b-weak', 'b-dead'][b] + '" title="high: stable in at least 80% of the bootstrap resamples and p ≤ 0.01; low: stable in under half or p > 0.05; else medium">' + TRUST_WORDS[b] + ' trust</span>';
    s += '<span class="small">stability <b>' + Math.round(T.stability[u] * 100) + '%</b>' +
      (T.runnerUp[u] >= 0 ? ' (runner-up ' + esc(C[T.runnerUp[u]]) + ' ' + Math.round(T.runnerUpFraction[u] * 100) + '%)' : '') +
      ' · p <b>' + fmtP(T.p[u]) + '</b> · z ' + fmt(T.z[u]) + ' · simulation r <b>' + fmt(T.sim[u]) + '</b> · score ' + fmt(L.score[u]) + '</span>';
    return s;
  }
  function trustDetail(L, u) {
    var T = L.trust;
    if (!T || L.isDead[u]) return '';
    var names = ['correlation', 'cosine', 'AUPRC', 'F1', 'IoU'], s = '<h3>Which labels to trust</h3><table class="tmet"><tr>';
    names.forEach(function (n) { s += '<td class="muted">' + n + '</td>'; });
    s += '</tr><tr>';
    names.forEach(function (n, i) { s += '<td><b>' + fmt(T.metrics[u * 5 + i]) + '</b></td>'; });
    s += '</tr></table><div class="small muted">on the ' + (T.settings ? T.settings.heldOutImages + ' held-out' : 'held-out') + ' images, presence from ' + (T.settings ? esc(T.settings.presence) : '?') + ' labels; fit-half label <b>' + esc(C[T.fitLabel[u]]) + '</b>' +
      (T.fitLabel[u] === L.label[u] ? ' (= the label)' : ' (differs from the label: the figures judge the fit-half label)') + '</div>';
    return s;
  }
  function trustSummary(L) {
    var S = L.trust && L.trust.summary;
    if (!S) return '';
    return '<div class="small">Trust: <span class="tb tb0"></span>high ' + num(S.badges.high) + ' · <span class="tb tb1"></span>medium ' + num(S.badges.medium) + ' · <span class="tb tb2"></span>low ' + num(S.badges.low) +
      ' · stability mean ' + fmt(S.stability.mean) + ' · significant ' + (S.significant * 100).toFixed(1) + '% · simulation r mean ' + fmt(S.simulation.mean) + '</div>';
  }
  function verdict(L, u) {
    if (L.trust && !L.isDead[u]) return trustVerdict(L, u);
    if (L.isDead[u]) return '<span class="badge b-dead">dead neuron</span><span class="small muted">its activation is constant over the probe images: the label means nothing</span>';
    if (L.rank[u] < 0) return '<span class="badge b-dead">no score</span>';
    var r = L.rank[u] + 1, p = r / L.live, pct = Math.max(1, Math.ceil(p * 100));
    var cls = p <= 0.1 ? 'b-strong' : p <= 0.5 ? 'b-mid' : 'b-weak';
    var word = p <= 0.1 ? 'strong match' : p <= 0.5 ? 'fair match' : 'weak match';
    return '<span class="badge ' + cls + '" title="compared with the other neurons of ' + esc(L.name) + ': top 10% strong, top half fair, bottom half weak">' + word + '</span><span class="small">score <b>' + fmt(L.score[u]) + '</b> · rank <b>' + num(r) + '</b> of ' + num(L.live) + ' in ' + esc(L.name) +
      ' (' + (p <= 0.5 ? 'top ' + pct + '%' : 'bottom ' + Math.max(1, 100 - pct + 1) + '%') + ' by score)</span>';
  }

  function renderDetail() {
    var L = LAYERS[state.layer], u = state.unit, box = el('detail');
    if (!box) return;
    if (u < 0 || u >= L.n) {
      box.innerHTML = '<h2>' + esc(L.name) + '</h2><p class="muted">Click a neuron (or press <kbd>j</kbd>) to see its label, top concepts and the images that activate it most.</p>' +
        '<p class="muted small">Sort by score to see the most interpretable neurons first.</p>';
      return;
    }
    var shown = orderOf(L).length, pos = L.pos[u];
    var s = '<div class="dhead"><span class="where">' + esc(L.name) + ' · unit ' + u + '</span><span class="nav"><span class="small muted">' + (pos < 0 ? 'not shown' : num(pos + 1) + ' / ' + num(shown)) + '</span>' +
      '<button id="prev" title="previous neuron (k)"' + (pos <= 0 ? ' disabled' : '') + '>‹ prev</button><button id="next" title="next neuron (j)"' + (pos === shown - 1 ? ' disabled' : '') + '>next ›</button></span></div>';
    s += '<div class="label" id="dlabel">' + esc(C[L.label[u]]) + '</div>';
    s += '<div class="verdict">' + verdict(L, u) + '</div>';
    s += trustDetail(L, u);
    s += '<div style="display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap"><div><h3>Top concepts (' + esc(M.similarity || 'similarity') + ' score)</h3><table class="concepts">';
    var ts = [], t;
    for (t = 0; t < L.nTop; t++) ts.push(L.topScore[u * L.nTop + t]);
    var tl = Math.min.apply(null, ts.concat([L.lo])), tspan = Math.max.apply(null, ts.concat([L.hi])) - tl || 1;
    for (t = 0; t < L.nTop; t++) {
      var c = L.top[u * L.nTop + t];
      if (c < 0) continue;
      var v = L.topScore[u * L.nTop + t];
      s += '<tr><td>' + esc(C[c]) + '</td><td style="width:160px"><div class="cbar" style="width:' + (v === null ? 0 : Math.max(2, Math.round(((v - tl) / tspan) * 100))) + '%"></div></td><td class="small">' + fmt(v) + '</td></tr>';
    }
    s += '</table></div><div><h3>Where this score falls in ' + esc(L.name) + '</h3>' + hist(L, 230, 64, L.isDead[u] ? null : L.score[u]) + '</div></div>';
    var big = Math.min(M.thumbSize, 120);
    s += '<h3>Top ' + L.nImg + ' activating images <span class="muted small">(activation)</span></h3><div class="imgs" id="topimgs">';
    for (t = 0; t < L.nImg; t++) {
      var row = L.img[u * L.nImg + t], a = L.act[u * L.nImg + t];
      s += '<figure data-row="' + row + '">' + img(row, big) + '<figcaption>#' + (t + 1) + (a === null ? '' : ' · <b>' + fmtAct(a) + '</b>') + '</figcaption></figure>';
    }
    s += '</div>';
    if (L.cut.length) {
      var nb = M.bands.length, small = Math.min(M.thumbSize, 64);
      s += '<h3>Random images from the top of its activations <span class="muted small">(seed ' + M.seed + ')</span></h3>';
      for (var b = 0; b < nb; b++) {
        var cells = '';
        for (var k = 0; k < M.stripSize; k++) {
          var r2 = L.strip[(u * nb + b) * M.stripSize + k];
          if (r2 >= 0) cells += img(r2, small);
        }
        s += '<div class="strip"><div class="bl"><b>' + BAND_NAMES[b] + '</b><br>act ≥ ' + fmtAct(L.cut[u * nb + b]) + '</div>' + cells + '</div>';
      }
    }
    box.innerHTML = s;
  }

  // --- navigation
  // go() renders at once (so that quick key repeats step from the new neuron) and sets the hash; the
  // hashchange that follows finds the view rendered already
  var routed = null;
  function go(li, unit) {
    var h = li < 0 ? '#' : hashOf(li, unit);
    if (location.hash !== h) location.hash = h;
    route();
  }
  function route() {
    if (location.hash === routed) return;
    routed = location.hash;
    var h = decodeURIComponent(location.hash.slice(1));
    var li = -1, unit = -1;
    if (h) {
      if (byName[h] !== undefined) li = byName[h];
      else {
        var cut = h.lastIndexOf('/');
        if (cut > 0 && byName[h.slice(0, cut)] !== undefined && /^\d+$/.test(h.slice(cut + 1))) {
          li = byName[h.slice(0, cut)];
          unit = Math.min(Number(h.slice(cut + 1)), LAYERS[li].n - 1);
        }
      }
    }
    var sameLayer = li === state.layer && li >= 0 && el('tbody');
    state.layer = li;
    state.unit = unit;
    if (li < 0) {
      renderTabs();
      renderOverview();
    } else {
      var L = LAYERS[li];
      if (unit >= 0) {
        orderOf(L);
        if (L.pos[unit] < 0) { L.filter = -1; L.order = null; orderOf(L); }
        L.page = Math.floor(L.pos[unit] / PAGE);
      }
      if (sameLayer) {
        renderTable();
        renderDetail();
      } else {
        renderTabs();
        renderLayer();
      }
      var tr = document.querySelector('#tbody tr.sel'), wrap = el('twrap');
      if (tr && wrap) {
        var top = tr.getBoundingClientRect().top - wrap.getBoundingClientRect().top + wrap.scrollTop, th = 30;
        if (top - th < wrap.scrollTop) wrap.scrollTop = top - th;
        else if (top + tr.offsetHeight > wrap.scrollTop + wrap.clientHeight) wrap.scrollTop = top + tr.offsetHeight - wrap.clientHeight;
      }
    }
    document.title = (li < 0 ? 'Overview' : LAYERS[li].name + (unit >= 0 ? '/' + unit + ' ' + C[LAYERS[li].label[unit]] : '')) + ' · CLIP-Dissect report';
  }
  function step(d) {
    if (state.layer < 0) return;
    var L = LAYERS[state.layer], o = orderOf(L);
    var i = state.unit < 0 || L.pos[state.unit] < 0 ? (d > 0 ? 0 : o.length - 1) : L.pos[state.unit] + d;
    if (i >= 0 && i < o.length) go(state.layer, o[i]);
  }

  // --- search across layers
  var hits = [], hsel = 0;
  function search(q) {
    q = q.trim().toLowerCase();
    var box = el('results');
    hits = [];
    hsel = 0;
    if (!q) { box.className = ''; box.innerHTML = ''; return; }
    LAYERS.forEach(function (L, li) {
      for (var u = 0; u < L.n; u++) {
        var lab = CL[L.label[u]], kind = 0, at = -1;
        if (lab === q) kind = 3;
        else if (lab.indexOf(q) >= 0) kind = 2;
        else
          for (var t = 1; t < L.nTop; t++) {
            var c = L.top[u * L.nTop + t];
            if (c >= 0 && CL[c].indexOf(q) >= 0) { kind = 1; at = t; break; }
          }
        if (kind) hits.push({ li: li, u: u, kind: kind, at: at, s: L.isDead[u] || L.score[u] === null ? -Infinity : L.score[u] });
      }
    });
    hits.sort(function (a, b) { return b.kind - a.kind || b.s - a.s || a.li - b.li || a.u - b.u; });
    var nl = {};
    hits.forEach(function (h) { nl[h.li] = 1; });
    var hl = function (s) {
      var i = s.toLowerCase().indexOf(q);
      return i < 0 ? esc(s) : esc(s.slice(0, i)) + '<mark>' + esc(s.slice(i, i + q.length)) + '</mark>' + esc(s.slice(i + q.length));
    };
    var s = '<div class="count">' + (hits.length ? num(hits.length) + ' neuron' + (hits.length === 1 ? '' : 's') + ' in ' + Object.keys(nl).length + ' layer' + (Object.keys(nl).length === 1 ? '' : 's') + ' (label first, then top-' + LAYERS[0].nTop + ')' + (hits.length > 200 ? ', first 200 shown' : '') : 'no neuron has "' + esc(q) + '" in its label or top concepts') + '</div>';
    hits.slice(0, 200).forEach(function (h, i) {
      var L = LAYERS[h.li];
      s += '<div class="r' + (i === 0 ? ' sel' : '') + '" data-i="' + i + '"><span class="where">' + esc(L.name) + '/' + h.u + '</span><span>' + hl(C[L.label[h.u]]) +
        (L.isDead[h.u] ? '<span class="flag">dead</span>' : '') + '</span><span class="why">' + (h.kind === 1 ? 'top-' + (h.at + 1) + ': ' + hl(C[L.top[h.u * L.nTop + h.at]]) + ' · ' : '') + fmt(L.score[h.u]) + '</span></div>';
    });
    box.innerHTML = s;
    box.className = 'open';
  }
  function openHit(i) {
    var h = hits[i];
    if (!h) return;
    el('results').className = '';
    el('search').blur();
    go(h.li, h.u);
  }

  // --- shell
  root.innerHTML = '<header><h1>CLIP-Dissect report</h1><div class="meta" id="meta"></div><div id="searchbox"><input id="search" type="search" placeholder="Search a concept across layers  ( / )" autocomplete="off" spellcheck="false"><div id="results"></div></div></header>' +
    '<nav id="tabs"></nav><main id="view"></main>' +
    '<footer>Keys: <kbd>j</kbd>/<kbd>↓</kbd> next neuron · <kbd>k</kbd>/<kbd>↑</kbd> previous · <kbd>[</kbd>/<kbd>]</kbd> previous / next layer · <kbd>/</kbd> search · <kbd>Esc</kbd> close search. ' +
    'Score: the ' + esc(M.similarity || 'similarity') + ' match between a concept and the neuron’s most activating images; higher is better, compare within a layer. Links like <code>#layer4/12</code> open a neuron. Made by clip-dissect ' + esc(D.version) + '.</footer>';
  var meta = [];
  if (M.target) meta.push('target ' + esc(String(M.target).split(/[\\/]/).filter(Boolean).slice(-2).join('/')));
  if (M.clip) meta.push('CLIP ' + esc(String(M.clip).split(/[\\/]/).filter(Boolean).slice(-1)[0]));
  if (M.similarity) meta.push(esc(M.similarity));
  if (M.nImages) meta.push(num(M.nImages) + ' probe images');
  if (M.nConcepts) meta.push(num(M.nConcepts) + ' concepts');
  meta.push(LAYERS.length + ' layer' + (LAYERS.length === 1 ? '' : 's') + ', ' + num(LAYERS.reduce(function (s, L) { return s + L.n; }, 0)) + ' neurons');
  el('meta').innerHTML = meta.join(' · ');
  el('meta').title = M.results || '';

  document.addEventListener('click', function (e) {
    var t = e.target;
    var chip = t.closest && t.closest('.chip');
    if (chip) { el('search').value = chip.getAttribute('data-q'); search(chip.getAttribute('data-q')); el('search').focus(); return; }
    var r = t.closest && t.closest('#results .r');
    if (r) { openHit(Number(r.getAttribute('data-i'))); return; }
    if (!(t.closest && t.closest('#searchbox'))) el('results').className = '';
    var th = t.closest && t.closest('th[data-sort]');
    if (th) {
      var L = LAYERS[state.layer], k = th.getAttribute('data-sort');
      L.sort = { key: k, dir: L.sort.key === k ? -L.sort.dir : k === 'score' ? -1 : 1 };
      L.order = null;
      if (state.unit >= 0 && orderOf(L) && L.pos[state.unit] >= 0) L.page = Math.floor(L.pos[state.unit] / PAGE); else L.page = 0;
      renderTable();
      renderDetail();
      return;
    }
    var pb = t.closest && t.closest('button[data-page]');
    if (pb) { LAYERS[state.layer].page = Number(pb.getAttribute('data-page')); renderTable(); return; }
    var tr = t.closest && t.closest('#tbody tr');
    if (tr) { go(state.layer, Number(tr.getAttribute('data-unit'))); return; }
    if (t.id === 'next') step(1);
    if (t.id === 'prev') step(-1);
  });
  el('search').addEventListener('input', function (e) { search(e.target.value); });
  el('search').addEventListener('focus', function (e) { if (e.target.value) search(e.target.value); });
  document.addEventListener('keydown', function (e) {
    if (e.target === el('search')) {
      var rs = document.querySelectorAll('#results .r');
      if (e.key === 'Escape') { el('results').className = ''; e.target.blur(); }
      else if (e.key === 'Enter') openHit(hsel);
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
    if (e.key === 'j' || e.key === 'ArrowDown') { e.preventDefault(); step(1); }
    else if (e.key === 'k' || e.key === 'ArrowUp') { e.preventDefault(); step(-1); }
    else if (e.key === ']' || e.key === '[') {
      var li = state.layer + (e.key === ']' ? 1 : -1);
      if (li >= -1 && li < LAYERS.length) go(li, -1);
    } else if (e.key === '/') { e.preventDefault(); el('search').focus(); el('search').select(); }
  });
  window.addEventListener('hashchange', route);
  route();
  window.__reportReady = performance.now();
})();
`;

/** index.html of the report. */
export const REPORT_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'self' 'unsafe-inline' file:; style-src 'unsafe-inline'; img-src 'self' file: data:">
<meta name="referrer" content="no-referrer">
<title>CLIP-Dissect report</title>
<style>${CSS}</style>
</head>
<body>
<div id="app"><p style="padding:24px">Loading…</p></div>
<script src="data.js"></script>
<script>${JS}</script>
</body>
</html>
`;
