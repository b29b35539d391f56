// The promoe dashboard's page logic: fetches JSON from `promoe serve` (/api/...), draws the runs
// table, overlaid metric curves (SVG, with smoothing and a log axis), a run's routing (expert
// shares over steps, class-by-expert heat maps), sample grid, the paper tables and the claims.
// Polls the server so a running sweep's progress and curves update without a reload.
'use strict';

const POLL_MS = 1000 * (Number(new URLSearchParams(location.search).get('poll')) || 5);
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
                 '#bcbd22', '#17becf', '#393b79', '#637939', '#8c6d31', '#843c39', '#7b4173', '#3182bd'];
const DEFAULT_SELECTED = 8;   // runs overlaid when the page opens

const state = {
  runs: [], selected: new Set(), selectionTouched: false, openRun: null,
  metric: 'loss', metrics: [], smoothing: 0.6, logY: false, table: null,
};

// ---- small helpers ----

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) node.append(c);
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, {cache: 'no-store'});
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function fmt(value, decimals = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  if (Math.abs(value) >= 1e4 || (Math.abs(value) < 1e-3 && value !== 0)) return value.toExponential(2);
  return Number(value).toFixed(decimals);
}

function runLabel(id) {
  const run = state.runs.find(r => r.run_id === id);
  return run ? `${run.label || '-'} ${id.slice(0, 6)}` : id.slice(0, 6);
}

function colorOf(id) {
  const index = state.runs.findIndex(r => r.run_id === id);
  return PALETTE[(index < 0 ? 0 : index) % PALETTE.length];
}

function showError(container, error) {
  container.replaceChildren(el('p', {class: 'error'}, String(error.message || error)));
}

// ---- SVG line chart ----

function niceTicks(lo, hi, count) {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / count, mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= step0);
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function logTicks(lo, hi) {
  const ticks = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
    for (const m of [1, 2, 5]) { const t = m * 10 ** e; if (t >= lo && t <= hi) ticks.push(t); }
  return ticks.length >= 2 ? ticks : [lo, hi];
}

// series: [{id, name, color, points: [[x, y], ...], faint}]; options: {logY, width, height, yLabel}.
function lineChart(series, options) {
  const W = options.width || 760, H = options.height || 300, L = 64, R = 24, T = 10, B = 34;
  const usable = p => p[1] !== null && Number.isFinite(p[1]) && (!options.logY || p[1] > 0);
  const all = series.flatMap(s => s.points.filter(usable));
  const chart = svg('svg', {class: 'line-chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H});
  if (all.length === 0) {
    chart.append(svg('text', {x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis'}, 'no points'));
    return chart;
  }
  let [x0, x1] = [Math.min(...all.map(p => p[0])), Math.max(...all.map(p => p[0]))];
  let [y0, y1] = [Math.min(...all.map(p => p[1])), Math.max(...all.map(p => p[1]))];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; if (options.logY && y0 <= 0) y0 = y1 / 100; }
  const fy = options.logY ? v => Math.log10(v) : v => v;
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = y => T + (1 - (fy(y) - fy(y0)) / (fy(y1) - fy(y0))) * (H - T - B);
  const axes = svg('g', {class: 'axis'});
  for (const t of niceTicks(x0, x1, 8)) {
    axes.append(svg('line', {x1: sx(t), x2: sx(t), y1: T, y2: H - B, class: 'grid'}));
    axes.append(svg('text', {x: sx(t), y: H - B + 14, 'text-anchor': 'middle'}, String(t)));
  }
  for (const t of options.logY ? logTicks(y0, y1) : niceTicks(y0, y1, 6)) {
    axes.append(svg('line', {x1: L, x2: W - R, y1: sy(t), y2: sy(t), class: 'grid'}));
    axes.append(svg('text', {x: L - 4, y: sy(t) + 4, 'text-anchor': 'end'}, fmt(t, 3)));
  }
  axes.append(svg('text', {x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle'}, options.xLabel || 'step'));
  chart.append(axes);
  for (const s of series) {
    const points = s.points.filter(usable).map(p => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
    const line = svg('polyline', {points, stroke: s.color, class: s.faint ? 'curve faint' : 'curve',
                                  'data-run-id': s.id || '', 'data-points': s.points.filter(usable).length},
                     svg('title', {}, s.name));
    chart.append(line);
  }
  return chart;
}

function legend(series) {
  return el('div', {class: 'legend'}, series.filter(s => !s.faint).map(s =>
    el('span', {}, el('i', {class: 'swatch', style: `background:${s.color}`}), s.name)));
}

// Exponential moving average with TensorBoard's debiasing, so the first points are not pulled to 0.
function smooth(points, weight) {
  if (!(weight > 0)) return points;
  let last = 0, n = 0;
  return points.map(([x, y]) => {
    if (y === null || !Number.isFinite(y)) return [x, y];
    last = last * weight + (1 - weight) * y;
    n++;
    return [x, last / (1 - weight ** n)];
  });
}

// ---- sweeps and runs ----

async function loadOverview() {
  const overview = await getJSON('/api/overview');
  document.getElementById('db').textContent = overview.db;
  const box = document.getElementById('sweeps');
  box.replaceChildren(...overview.sweeps.map(s => {
    const bar = el('div', {class: 'bar', title: `${s.done} done, ${s.running} running, ${s.queued} queued, ${s.failed} failed`});
    for (const part of ['done', 'running', 'interrupted', 'failed', 'queued'])
      if (s[part] > 0) bar.append(el('span', {class: `part ${part}`, style: `width:${100 * s[part] / s.runs}%`}));
    return el('div', {class: 'sweep'}, el('a', {href: `#sweep=${encodeURIComponent(s.sweep)}`}, s.sweep),
              bar, el('span', {class: 'note'}, `${s.done}/${s.runs} done, ${s.running} running`));
  }));
  const select = document.getElementById('filter-sweep'), current = select.value;
  select.replaceChildren(el('option', {value: ''}, 'all'), ...overview.sweeps.map(s => el('option', {value: s.sweep}, s.sweep)));
  select.value = current;
}

function runsQuery() {
  const q = new URLSearchParams();
  const sweep = document.getElementById('filter-sweep').value, status = document.getElementById('filter-status').value;
  const param = document.getElementById('filter-param').value.trim();
  if (sweep) q.set('sweep', sweep);
  if (status) q.set('status', status);
  if (param) q.set('param', param);
  return q.toString();
}

function progressCell(run) {
  const fraction = run.steps ? Math.min(1, run.step_done / run.steps) : 0;
  return el('td', {class: 'progress'}, el('div', {class: 'bar small'},
    el('span', {class: `part ${run.status}`, style: `width:${100 * fraction}%`})), ` ${run.step_done}/${run.steps ?? '?'}`);
}

function paramsCell(run) {
  return el('td', {class: 'params'}, Object.entries(run.params || {}).map(([k, v]) =>
    el('span', {class: 'chip', title: k}, `${k.split('.').slice(-2).join('.')}=${v.replace(/^"(.*)"$/, '$1') || '""'}`)));
}

function runRow(run) {
  const box = el('input', {type: 'checkbox', onchange: e => {
    state.selectionTouched = true;
    if (e.target.checked) state.selected.add(run.run_id); else state.selected.delete(run.run_id);
    loadCurves();
  }});
  box.checked = state.selected.has(run.run_id);
  return el('tr', {class: `run-row status-${run.status}`, 'data-run-id': run.run_id},
    el('td', {}, box),
    el('td', {}, el('a', {href: `#run=${run.run_id}`, class: 'run-id'}, run.run_id)),
    el('td', {}, el('i', {class: 'swatch', style: `background:${colorOf(run.run_id)}`}), run.label || '-'),
    el('td', {class: 'status'}, run.status), progressCell(run),
    el('td', {class: 'num'}, fmt(run.loss)), el('td', {class: 'num'}, fmt(run.val_loss)),
    el('td', {class: 'num'}, fmt(run.fd, 2)), el('td', {class: 'num'}, fmt(run.is_score, 2)),
    paramsCell(run), el('td', {class: 'note'}, run.sweeps || ''));
}

// Until the user picks, the running runs are overlaid, else the latest finished ones.
function defaultSelection() {
  if (state.selectionTouched) return;
  const running = state.runs.filter(r => r.status === 'running' || r.status === 'interrupted');
  const done = state.runs.filter(r => r.status === 'done');
  const pick = (running.length ? running : done).slice(-DEFAULT_SELECTED);
  state.selected = new Set(pick.map(r => r.run_id));
}

async function loadRuns() {
  const data = await getJSON(`/api/runs?${runsQuery()}`);
  state.runs = data.runs;
  defaultSelection();
  document.querySelector('#runs tbody').replaceChildren(...state.runs.map(runRow));
  document.getElementById('runs-count').textContent = `${state.runs.length} runs`;
}

// ---- curves ----

async function loadMetricNames() {
  const ids = [...state.selected];
  if (ids.length === 0) return;
  const data = await getJSON(`/api/metrics?runs=${ids.join(',')}`);
  state.metrics = data.metrics;
  const select = document.getElementById('metric');
  if (!state.metrics.includes(state.metric) && state.metrics.length) state.metric = state.metrics.includes('loss') ? 'loss' : state.metrics[0];
  select.replaceChildren(...state.metrics.map(m => el('option', {value: m}, m)));
  select.value = state.metric;
}

async function loadCurves() {
  const box = document.getElementById('curves');
  const ids = [...state.selected];
  if (ids.length === 0) { box.replaceChildren(el('p', {class: 'note'}, 'Tick runs in the table to overlay their curves.')); return; }
  try {
    await loadMetricNames();
    const data = await getJSON(`/api/curves?runs=${ids.join(',')}&metric=${encodeURIComponent(state.metric)}`);
    const series = [];
    for (const s of data.series) {
      const base = {id: s.run_id, name: runLabel(s.run_id), color: colorOf(s.run_id)};
      if (state.smoothing > 0) series.push({...base, points: s.points, faint: true});
      series.push({...base, points: smooth(s.points, state.smoothing)});
    }
    box.replaceChildren(lineChart(series, {logY: state.logY, width: 1100, height: 340}), legend(series));
  } catch (error) { showError(box, error); }
}

// ---- one run ----

function heatmap(layer) {
  const n_experts = Math.max(0, ...layer.tokens.map(row => row.length));
  const cell = 22, left = 56, top = 20;
  const chart = svg('svg', {class: 'heatmap', 'data-layer': layer.layer, width: left + cell * n_experts + 4,
                            height: top + cell * layer.classes.length + 4});
  for (let e = 0; e < n_experts; e++)
    chart.append(svg('text', {x: left + cell * e + cell / 2, y: top - 6, 'text-anchor': 'middle', class: 'axis'}, `E${e}`));
  layer.tokens.forEach((row, r) => {
    const total = row.reduce((a, b) => a + (b || 0), 0) || 1;
    chart.append(svg('text', {x: left - 6, y: top + cell * r + cell / 2 + 4, 'text-anchor': 'end', class: 'axis'},
                     `class ${layer.classes[r]}`));
    for (let e = 0; e < n_experts; e++) {
      const fraction = (row[e] || 0) / total;
      const shade = Math.round(255 * (1 - Math.sqrt(fraction)));   // square root: small shares stay visible
      chart.append(svg('rect', {x: left + cell * e, y: top + cell * r, width: cell - 1, height: cell - 1,
                                fill: `rgb(${shade},${shade},255)`, class: 'cell'},
                       svg('title', {}, `class ${layer.classes[r]}, expert ${e}: ${row[e] || 0} tokens (${(100 * fraction).toFixed(1)}%)`)));
    }
  });
  return chart;
}

function shareChart(layer) {
  const n_experts = Math.max(0, ...layer.share.map(row => row.length));
  const series = [];
  for (let e = 0; e < n_experts; e++)
    series.push({name: `expert ${e}`, color: PALETTE[e % PALETTE.length],
                 points: layer.steps.map((step, i) => [step, layer.share[i][e] ?? null])});
  return el('div', {}, lineChart(series, {width: 400, height: 200}), legend(series));
}

function smallTable(headers, rows) {
  return el('table', {class: 'small'}, el('thead', {}, el('tr', {}, headers.map(h => el('th', {}, h)))),
            el('tbody', {}, rows.map(r => el('tr', {}, r.map(c => el('td', {}, typeof c === 'number' ? fmt(c) : c))))));
}

function analysisBlock(analysis) {
  const blocks = [];
  if (analysis.diversity.length) {
    // One row per layer (the model mean first), one column per subspace dimension k.
    const last = Math.max(...analysis.diversity.map(r => r.step));
    const rows = analysis.diversity.filter(r => r.step === last && r.variant === 'out');
    const ks = [...new Set(rows.map(r => r.k))].sort((a, b) => a - b);
    const layers = [...new Set(rows.map(r => r.layer))].sort((a, b) => a - b);
    const value = (layer, k) => { const r = rows.find(x => x.layer === layer && x.k === k); return r ? r.value : null; };
    blocks.push(el('h4', {}, `Expert diversity (subspace similarity at step ${last}; lower = more diverse)`),
                smallTable(['layer', ...ks.map(k => `k=${k}`)],
                           layers.map(l => [l < 0 ? 'mean' : String(l), ...ks.map(k => value(l, k))])));
  }
  if (analysis.token_stats.length) {
    const rows = analysis.token_stats.filter(r => r.metric === 'ratio');
    blocks.push(el('h4', {}, 'Token separation (inter / intra-class distance)'),
                smallTable(['step', 'layer', 't', 'variant', 'ratio'], rows.map(r => [String(r.step), String(r.layer), String(r.t), r.variant, r.value])));
  }
  if (analysis.specialisation.length)
    blocks.push(el('h4', {}, 'Routing specialisation'),
                smallTable(['step', 'layer', 'metric', 'value'], analysis.specialisation.map(r => [String(r.step), String(r.layer), r.metric, r.value])));
  return blocks;
}

async function loadRun(id) {
  const box = document.getElementById('run');
  try {
    const [run, routing] = await Promise.all([getJSON(`/api/runs/${id}`), getJSON(`/api/runs/${id}/routing`)]);
    document.getElementById('run-title').textContent = `${run.label || '-'} ${run.run_id} (${run.status})`;
    const evals = smallTable(['metric', 'cfg', 'step', 'samples', 'seed', 'value'],
      run.evals.map(e => [e.metric, String(e.cfg_scale), String(e.step), String(e.n_samples), String(e.sample_seed), e.value]));
    const parts = [
      el('div', {class: 'columns'},
        el('div', {}, el('h3', {}, 'Summary'), smallTable(['', ''], [
          ['progress', `${run.step_done}/${run.steps ?? '?'}`], ['loss', run.loss], ['FD', run.fd], ['IS', run.is_score],
          ['params (total / active)', `${run.params_total ?? '–'} / ${run.params_active ?? '–'}`],
          ['images/s', run.img_per_s], ['host', run.host || '–'], ['sweeps', run.sweeps || '–'],
          ['error', run.error || '–']])),
        el('div', {}, el('h3', {}, 'Evaluations'), evals),
        el('div', {}, el('h3', {}, 'Samples'), run.has_samples
          ? el('img', {class: 'samples', src: `/api/runs/${id}/samples.png?t=${run.step_done}`, alt: 'sample grid'})
          : el('p', {class: 'note'}, 'no sample grid in the run folder'))),
    ];
    if (routing.share.length) {
      parts.push(el('h3', {}, 'Expert token share over steps (conditional tokens)'));
      parts.push(el('div', {class: 'grid'}, routing.share.map(l => el('div', {}, el('h4', {}, `layer ${l.layer}`), shareChart(l)))));
    }
    if (routing.class_routing.length) {
      parts.push(el('h3', {}, 'Class by expert (row-normalised token counts, last recorded step)'));
      parts.push(el('div', {class: 'grid'}, routing.class_routing.map(l =>
        el('div', {}, el('h4', {}, `layer ${l.layer}, step ${l.step}`), heatmap(l)))));
    }
    parts.push(...analysisBlock(routing.analysis));
    parts.push(el('details', {}, el('summary', {}, 'Config'), el('pre', {class: 'config'}, run.config_yaml)));
    box.replaceChildren(...parts);
  } catch (error) { showError(box, error); }
}

// ---- tables and claims ----

function runsLink(ids, text) {
  return ids && ids.length ? el('a', {href: `#runs=${ids.join(',')}`, title: ids.join('\n')}, text) : el('span', {}, text);
}

function cellNode(cell) {
  const value = cell.n > 0 ? `${cell.mean.toFixed(cell.decimals)}${cell.n > 1 ? ` ± ${cell.half.toFixed(cell.decimals)}` : ''} (n=${cell.n})`
                           : cell.state;
  return el('td', {class: cell.n > 0 ? 'num' : 'note'}, runsLink(cell.runs, value));
}

async function loadTableList() {
  const data = await getJSON('/api/tables');
  const select = document.getElementById('table-select');
  select.replaceChildren(...data.tables.map(t => el('option', {value: t.name}, t.title)));
  if (!state.table && data.tables.length) state.table = (data.tables.find(t => t.name === 'table1') || data.tables[0]).name;
  select.value = state.table;
}

async function loadTable() {
  const box = document.getElementById('table');
  if (!state.table) return;
  try {
    const t = await getJSON(`/api/tables/${state.table}`);
    const head = el('tr', {}, el('th', {}, 'row'), t.columns.map(c => {
      const name = `${c.metric}${c.cfg !== undefined ? ` cfg ${c.cfg}` : ''}${c.k ? ` k ${c.k}` : ''} ${c.lower_is_better ? '↓' : '↑'}`;
      return [el('th', {}, name), el('th', {class: 'paper'}, 'paper')];
    }));
    const rows = t.rows.map(r => el('tr', {}, el('td', {}, r.label),
      r.cells.map(c => [cellNode(c), el('td', {class: 'paper num'}, c.paper === null ? '–' : String(c.paper))])));
    box.replaceChildren(el('p', {class: 'note'}, `${t.caption} (${t.scale} scale, sweep ${t.sweep})`),
                        el('table', {class: 'paper-table'}, el('thead', {}, head), el('tbody', {}, rows)));
  } catch (error) { showError(box, error); }
}

async function loadClaims() {
  const box = document.getElementById('claims');
  try {
    const data = await getJSON('/api/claims');
    const rows = data.claims.map(c => el('tr', {class: `verdict-${c.verdict.replace(/\s+/g, '-')}`},
      el('td', {}, c.claim), el('td', {class: 'note'}, c.source),
      el('td', {}, c.column ? `${c.column.metric}${c.column.cfg !== undefined ? ` cfg ${c.column.cfg}` : ''}` : '–'),
      el('td', {class: 'num'}, c.n === undefined ? '–' : String(c.n)),
      el('td', {class: 'num'}, c.diff === undefined ? '–' : `${fmt(c.diff)} ± ${fmt(c.half)}`),
      el('td', {}, el('span', {class: 'verdict'}, c.verdict)),
      el('td', {}, c.untestable ? el('span', {class: 'note'}, c.untestable)
                                : [runsLink(c.better_runs, c.better), ' vs ', runsLink(c.than_runs, c.than)])));
    box.replaceChildren(el('table', {class: 'claims'}, el('thead', {}, el('tr', {},
      ['claim', 'source', 'metric', 'seeds', 'improvement (95% CI)', 'verdict', 'runs'].map(h => el('th', {}, h)))),
      el('tbody', {}, rows)));
  } catch (error) { showError(box, error); }
}

// ---- navigation and polling ----

async function route() {
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash.startsWith('run=')) {
    state.openRun = hash.slice(4);
    await loadRun(state.openRun);
    document.getElementById('run-section').scrollIntoView();
  } else if (hash.startsWith('runs=')) {
    state.selected = new Set(hash.slice(5).split(',').filter(Boolean));
    state.selectionTouched = true;
    document.getElementById('filters').reset();
    await loadRuns();
    await loadCurves();
    document.getElementById('curves-section').scrollIntoView();
  } else if (hash.startsWith('sweep=')) {
    document.getElementById('filter-sweep').value = hash.slice(6);
    await loadRuns();
  } else if (document.getElementById(hash)) {
    document.getElementById(hash).scrollIntoView();   // a section, once its content has loaded
  }
}

async function poll() {
  try {
    await loadOverview();
    await loadRuns();
    await loadCurves();
    const open = state.runs.find(r => r.run_id === state.openRun);
    if (open && open.status === 'running') await loadRun(state.openRun);
    document.getElementById('live').textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.getElementById('live').className = 'ok';
  } catch (error) {
    document.getElementById('live').textContent = `server unreachable: ${error.message}`;
    document.getElementById('live').className = 'error';
  }
}

function bindControls() {
  document.getElementById('filters').addEventListener('submit', e => { e.preventDefault(); loadRuns().then(loadCurves); });
  document.getElementById('metric').addEventListener('change', e => { state.metric = e.target.value; loadCurves(); });
  document.getElementById('smoothing').addEventListener('input', e => {
    state.smoothing = Number(e.target.value);
    document.getElementById('smoothing-value').textContent = state.smoothing.toFixed(2);
    loadCurves();
  });
  document.getElementById('log-y').addEventListener('change', e => { state.logY = e.target.checked; loadCurves(); });
  document.getElementById('table-select').addEventListener('change', e => { state.table = e.target.value; loadTable(); });
  window.addEventListener('hashchange', route);
}

async function start() {
  bindControls();
  await poll();
  if (!state.openRun) {
    const first = state.runs.find(r => r.status === 'running') || [...state.runs].reverse().find(r => r.status === 'done');
    if (first) { state.openRun = first.run_id; await loadRun(first.run_id); }
  }
  await Promise.all([loadTableList().then(loadTable), loadClaims()]);
  if (location.hash) await route();
  document.body.setAttribute('data-ready', 'true');
  setInterval(poll, POLL_MS);
}

start();
