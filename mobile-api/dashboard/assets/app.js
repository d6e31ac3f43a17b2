// The district dashboard: logs in with the API, reads /v1/stats for a unit and period,
// follows /v1/stats/events for live updates, and draws the figures with ECharts and
// the grids' outlines as SVG. Everything it loads comes from gridd.
'use strict';

const T = {
  zh: {
    title: '网格化管理 · 数据看板', last12: '近12个月', thisYear: '本年', thisMonth: '本月', custom: '自定义',
    live: '实时', liveTitle: '实时更新', logout: '退出', loginTitle: '登录', login: '账号', password: '密码', signIn: '登录',
    resolvedOfReported: '已办结 / 已上报', resolvedNote: '按上报时间统计', closureRate: '结案率', onTimeRate: '按期结案率',
    satisfactionRate: '满意率', meanHours: '平均办结用时', workingHours: '工作小时', openOverdue: '逾期未办结', now: '当前',
    escalationRate: '上报上级率', refusalRate: '否定率', reopenRate: '重办率', accepted: '受理', dueToClose: '应结案',
    trend: '趋势', byCategory: '按类别', csv: '导出CSV', ranking: '下级单位排名', unit: '单位', reported: '上报', closed: '结案',
    noChildren: '网格是最基层单位，没有下级。', map: '网格分布', mapNote: '颜色：结案率', overdueList: '逾期未办结事件',
    summary: '事件', category: '类别', grid: '网格', owner: '当前承办', status: '状态', dueAt: '应办结时间', late: '已逾期',
    noOverdue: '没有逾期未办结的事件。', asOf: '数据时间', csvSummary: '导出汇总CSV', csvMonths: '导出月度CSV',
    of: '{a} / {b}', closedOf: '已结 {a} / 应结 {b}', onTimeOf: '按期 {a} / 应结 {b}', ratedOf: '满意 {a} / 评价 {b}',
    period: '统计期 {from} 至 {to}', loginFailed: '账号或密码错误', tooMany: '尝试过多，请稍后再试', failed: '加载失败：',
    days: '{n}天', hours: '{n}小时', noMap: '没有网格边界数据', closureLine: '结案率',
    statuses: { reported: '待受理', accepted: '已受理', assigned: '已派遣', in_progress: '办理中', delayed: '已延期', resolved: '待核查' },
  },
  en: {
    title: 'Grid management · Dashboard', last12: 'Last 12 months', thisYear: 'This year', thisMonth: 'This month', custom: 'Custom',
    live: 'Live', liveTitle: 'Live updates', logout: 'Log out', loginTitle: 'Log in', login: 'Login', password: 'Password', signIn: 'Log in',
    resolvedOfReported: 'Resolved of reported', resolvedNote: 'by day reported', closureRate: 'Closure rate', onTimeRate: 'On-time rate',
    satisfactionRate: 'Satisfaction', meanHours: 'Mean time to close', workingHours: 'working hours', openOverdue: 'Open overdue', now: 'now',
    escalationRate: 'Escalation rate', refusalRate: 'Refusal rate', reopenRate: 'Reopen rate', accepted: 'Accepted', dueToClose: 'Due to close',
    trend: 'Trend', byCategory: 'By category', csv: 'CSV', ranking: 'Units below', unit: 'Unit', reported: 'Reported', closed: 'Closed',
    noChildren: 'A grid is the lowest level: no units below.', map: 'Grids', mapNote: 'colour: closure rate', overdueList: 'Open overdue items',
    summary: 'Item', category: 'Category', grid: 'Grid', owner: 'Owner', status: 'Status', dueAt: 'Due', late: 'Overdue by',
    noOverdue: 'No open overdue items.', asOf: 'As of', csvSummary: 'Summary CSV', csvMonths: 'Monthly CSV',
    of: '{a} of {b}', closedOf: '{a} closed of {b} due', onTimeOf: '{a} on time of {b} due', ratedOf: '{a} satisfied of {b} rated',
    period: 'Period {from} to {to}', loginFailed: 'Wrong login or password', tooMany: 'Too many attempts; try again later', failed: 'Could not load: ',
    days: '{n} d', hours: '{n} h', noMap: 'No grid outlines', closureLine: 'Closure rate',
    statuses: { reported: 'reported', accepted: 'accepted', assigned: 'assigned', in_progress: 'in progress', delayed: 'delayed', resolved: 'resolved' },
  },
};

const S = {
  lang: localStorage.getItem('gk.lang') || 'zh',
  token: sessionStorage.getItem('gk.token') || '',
  refresh: sessionStorage.getItem('gk.refresh') || '',
  device: sessionStorage.getItem('gk.device') || '',
  user: JSON.parse(sessionStorage.getItem('gk.user') || 'null'),
  unit: '', from: '', to: '', preset: '12m',
  data: null, units: null, charts: {}, stream: null, loading: null,
};

const $ = (id) => document.getElementById(id);
const t = (k) => T[S.lang][k] ?? k;
const fill = (s, v) => s.replace(/\{(\w+)\}/g, (_, k) => v[k]);
const pct = (x) => (x == null ? '—' : (x * 100).toFixed(1) + '%');
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function today() {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date());
}

// presetPeriod is the period of a preset; the last 12 months are the server's default
// period, so they are left to it ('' and '') and read back from its answer.
function presetPeriod(p) {
  const d = today();
  if (p === 'year') return [`${d.slice(0, 4)}-01-01`, d];
  if (p === 'month') return [`${d.slice(0, 8)}01`, d];
  return ['', ''];
}

function translate() {
  document.documentElement.lang = S.lang === 'zh' ? 'zh-CN' : 'en';
  document.title = t('title');
  document.querySelectorAll('[data-t]').forEach((el) => { el.textContent = t(el.dataset.t); });
  document.querySelectorAll('[data-t-title]').forEach((el) => { el.title = t(el.dataset.tTitle); });
  $('lang').textContent = S.lang === 'zh' ? 'EN' : '中文';
}

// --- the API ---

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (S.token) headers.Authorization = 'Bearer ' + S.token;
  let r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 401 && S.refresh && !opts.noRefresh) {
    if (await refresh()) return api(path, Object.assign({}, opts, { noRefresh: true }));
    showLogin();
    throw new Error('session ended');
  }
  return r;
}

async function refresh() {
  const r = await fetch('/v1/auth/refresh', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ refreshToken: S.refresh, deviceId: S.device }),
  });
  if (!r.ok) return false;
  keep(await r.json());
  return true;
}

function keep(tok) {
  S.token = tok.accessToken; S.refresh = tok.refreshToken;
  if (tok.user) S.user = tok.user;
  sessionStorage.setItem('gk.token', S.token);
  sessionStorage.setItem('gk.refresh', S.refresh);
  sessionStorage.setItem('gk.user', JSON.stringify(S.user));
}

async function login(ev) {
  ev.preventDefault();
  $('login-error').textContent = '';
  if (!S.device) {
    S.device = 'web-' + Array.from(crypto.getRandomValues(new Uint8Array(9)), (b) => b.toString(16).padStart(2, '0')).join('');
    sessionStorage.setItem('gk.device', S.device);
  }
  const r = await fetch('/v1/auth/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ login: $('login').value.trim(), password: $('password').value, deviceId: S.device, platform: 'web', appVersion: 'dashboard' }),
  });
  if (!r.ok) {
    $('login-error').textContent = r.status === 429 ? t('tooMany') : t('loginFailed');
    return;
  }
  keep(await r.json());
  $('password').value = '';
  start();
}

async function logout() {
  try { await api('/v1/auth/logout', { method: 'POST', noRefresh: true }); } catch (e) { /* ending anyway */ }
  sessionStorage.clear();
  S.token = S.refresh = ''; S.user = null; S.units = null;
  showLogin();
}

function showLogin() {
  stopStream();
  $('main').classList.add('hidden'); $('period').classList.add('hidden'); $('logout').classList.add('hidden');
  $('live').classList.add('hidden'); $('who').textContent = '';
  $('login-view').classList.remove('hidden');
  $('login').focus();
}

// --- state in the address: #unit=…&from=…&to=… ---

function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  S.unit = h.get('unit') || S.user.unitId;
  S.preset = h.get('preset') || (h.get('from') ? 'custom' : '12m');
  [S.from, S.to] = S.preset === 'custom' ? [h.get('from') || '', h.get('to') || ''] : presetPeriod(S.preset);
}

function writeHash() {
  const h = new URLSearchParams({ unit: S.unit, preset: S.preset });
  if (S.preset === 'custom') { h.set('from', S.from); h.set('to', S.to); }
  history.replaceState(null, '', '#' + h.toString());
}

function go(unit) {
  S.unit = unit;
  writeHash();
  load();
  follow();
}

// --- loading and drawing ---

async function start() {
  $('login-view').classList.add('hidden');
  $('main').classList.remove('hidden'); $('period').classList.remove('hidden'); $('logout').classList.remove('hidden');
  $('live').classList.remove('hidden');
  $('who').textContent = S.user ? S.user.name : '';
  readHash();
  $('preset').value = S.preset; $('from').value = S.from; $('to').value = S.to;
  await load();
  follow();
}

// query is the stats query of the page's unit and period (an empty day: the server's
// default).
function query(extra) {
  const q = new URLSearchParams(Object.assign({ unit: S.unit, lang: S.lang }, extra));
  if (S.from) q.set('from', S.from);
  if (S.to) q.set('to', S.to);
  return q.toString();
}

async function load() {
  const my = (S.loading = Symbol('load'));
  try {
    if (!S.units) {
      const u = await api('/v1/units');
      if (u.ok) S.units = (await u.json()).units;
    }
    const r = await api('/v1/stats?' + query());
    if (my !== S.loading) return;
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      $('period-label').textContent = t('failed') + (body.message || r.status);
      return;
    }
    S.data = await r.json();
    $('from').value = S.data.from; $('to').value = S.data.to;
    draw();
  } catch (e) {
    if (e.message !== 'session ended') $('period-label').textContent = t('failed') + e.message;
  }
}

function draw() {
  const d = S.data;
  $('unit-name').textContent = d.unitInfo.name;
  $('period-label').textContent = fill(t('period'), { from: d.from, to: d.to });
  $('crumbs').innerHTML = d.path.map((u, i) => (i === d.path.length - 1
    ? `<b>${esc(u.name)}</b>` : `<a data-unit="${esc(u.id)}">${esc(u.name)}</a><span class="sep">›</span>`)).join('');
  $('headline-resolved').textContent = fill(t('of'), { a: d.resolvedOfReported, b: d.reported });
  $('headline-closure').textContent = pct(d.closureRate);
  $('headline-closure-sub').textContent = fill(t('closedOf'), { a: d.closed, b: d.dueToClose });
  $('headline-ontime').textContent = pct(d.onTimeRate);
  $('headline-ontime-sub').textContent = fill(t('onTimeOf'), { a: d.closedOnTime, b: d.dueToClose });
  $('headline-satisfaction').textContent = pct(d.satisfactionRate);
  $('headline-satisfaction-sub').textContent = fill(t('ratedOf'), { a: d.satisfied + d.basicallySatisfied, b: d.rated });
  $('headline-hours').textContent = d.meanHoursToClose == null ? '—' : d.meanHoursToClose.toFixed(1);
  $('headline-overdue').textContent = d.openOverdue;
  $('rate-escalation').textContent = pct(d.escalationRate);
  $('rate-refusal').textContent = pct(d.refusalRate);
  $('rate-reopen').textContent = pct(d.reopenRate);
  $('count-accepted').textContent = d.accepted;
  $('count-due').textContent = d.dueToClose;
  $('as-of').textContent = new Date(d.asOf).toLocaleString(S.lang === 'zh' ? 'zh-CN' : 'en-GB', { timeZone: 'Asia/Shanghai' });
  drawRanking(d);
  drawOverdue(d);
  drawTrend(d);
  drawCategories(d);
  drawMap(d);
}

function drawRanking(d) {
  const rows = d.byUnit.slice().sort((a, b) => (b.closureRate ?? -1) - (a.closureRate ?? -1) || b.reported - a.reported);
  $('ranking').querySelector('tbody').innerHTML = rows.map((r, i) => `<tr data-unit="${esc(r.key)}">
    <td>${i + 1}</td><td>${esc(r.name || r.key)}</td><td class="num">${r.reported}</td><td class="num">${r.dueToClose}</td>
    <td class="num">${r.closed}</td><td class="num">${pct(r.closureRate)}</td><td class="num">${pct(r.onTimeRate)}</td>
    <td class="num">${pct(r.satisfactionRate)}</td><td class="num${r.openOverdue ? ' bad' : ''}">${r.openOverdue}</td></tr>`).join('');
  $('ranking').classList.toggle('hidden', rows.length === 0);
  $('ranking-empty').classList.toggle('hidden', rows.length !== 0);
}

function unitName(id) {
  const u = (S.units || []).find((x) => x.id === id);
  return u ? u.name : id;
}

function drawOverdue(d) {
  const now = Date.now();
  $('overdue').querySelector('tbody').innerHTML = d.overdue.map((e) => {
    const late = e.dueAt ? (now - Date.parse(e.dueAt)) / 3600000 : 0;
    const lateText = late >= 48 ? fill(t('days'), { n: Math.floor(late / 24) }) : fill(t('hours'), { n: Math.max(0, Math.floor(late)) });
    const cat = (d.byCategory.find((c) => c.key === e.category) || {}).name || e.category;
    return `<tr><td title="${esc(e.id)}">${esc(e.summary || e.id)}</td><td>${esc(cat)}</td><td>${esc(unitName(e.gridId))}</td>
      <td>${esc(unitName(e.unitId))}</td><td>${esc(t('statuses')[e.status] || e.status)}</td>
      <td>${e.dueAt ? new Date(e.dueAt).toLocaleString(S.lang === 'zh' ? 'zh-CN' : 'en-GB', { timeZone: 'Asia/Shanghai' }) : '—'}</td>
      <td class="bad">${lateText}</td></tr>`;
  }).join('');
  $('overdue').classList.toggle('hidden', d.overdue.length === 0);
  $('overdue-empty').classList.toggle('hidden', d.overdue.length !== 0);
}

function chart(id) {
  if (!window.echarts) return null;
  if (!S.charts[id]) S.charts[id] = echarts.init($(id), null, { renderer: 'canvas' });
  return S.charts[id];
}

function drawTrend(d) {
  const c = chart('trend-chart');
  if (!c) return;
  const daily = d.byDay && d.byDay.length <= 92;
  const rows = daily ? d.byDay : d.byMonth;
  c.setOption({
    animation: false,
    tooltip: { trigger: 'axis' },
    legend: { data: [t('reported'), t('closed'), t('closureLine')], top: 0 },
    grid: { left: 40, right: 50, top: 30, bottom: 30 },
    xAxis: { type: 'category', data: rows.map((r) => (daily ? r.key.slice(5) : r.key)) },
    yAxis: [{ type: 'value', minInterval: 1 }, { type: 'value', min: 0, max: 100, axisLabel: { formatter: '{value}%' } }],
    series: [
      { name: t('reported'), type: 'bar', data: rows.map((r) => r.reported), itemStyle: { color: '#90a4ae' } },
      { name: t('closed'), type: 'bar', data: rows.map((r) => r.closed), itemStyle: { color: '#1565c0' } },
      { name: t('closureLine'), type: 'line', yAxisIndex: 1, data: rows.map((r) => (r.closureRate == null ? null : +(r.closureRate * 100).toFixed(1))), itemStyle: { color: '#0b7a3e' }, connectNulls: true },
    ],
  }, true);
}

function drawCategories(d) {
  const c = chart('category-chart');
  if (!c) return;
  const rows = d.byCategory.slice(0, 12).reverse();
  c.setOption({
    animation: false,
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    legend: { data: [t('reported'), t('closed')], top: 0 },
    grid: { left: 110, right: 20, top: 30, bottom: 20 },
    xAxis: { type: 'value', minInterval: 1 },
    yAxis: { type: 'category', data: rows.map((r) => r.name || r.key) },
    series: [
      { name: t('reported'), type: 'bar', data: rows.map((r) => r.reported), itemStyle: { color: '#90a4ae' } },
      { name: t('closed'), type: 'bar', data: rows.map((r) => r.closed), itemStyle: { color: '#1565c0' } },
    ],
  }, true);
}

// inside reports whether unit is root or below it (a city holds the codes of its
// districts: same first four digits).
function inside(root, unit) {
  if (root.length === 6 && root.endsWith('00')) return unit.slice(0, 4) === root.slice(0, 4);
  return unit.startsWith(root);
}

function colour(rate) {
  if (rate == null) return '#cfd8dc';
  const r = Math.max(0, Math.min(1, rate));
  // red (low) to amber to green (high)
  const h = Math.round(r * r * 120);
  return `hsl(${h}, 62%, 48%)`;
}

function drawMap(d) {
  const grids = (S.units || []).filter((u) => u.level === 1 && u.boundary && inside(d.unit, u.id));
  if (!grids.length) { $('map').innerHTML = `<p class="muted">${esc(t('noMap'))}</p>`; return; }
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  const k = Math.cos((grids[0].boundary[0].lat * Math.PI) / 180);
  for (const g of grids) for (const v of g.boundary) {
    minX = Math.min(minX, v.lng * k); maxX = Math.max(maxX, v.lng * k); minY = Math.min(minY, v.lat); maxY = Math.max(maxY, v.lat);
  }
  const W = 600, H = 300, pad = 10;
  const s = Math.min((W - 2 * pad) / (maxX - minX || 1), (H - 2 * pad) / (maxY - minY || 1));
  const ox = (W - s * (maxX - minX)) / 2, oy = (H - s * (maxY - minY)) / 2;
  const px = (v) => [ox + (v.lng * k - minX) * s, H - (oy + (v.lat - minY) * s)];
  const parts = grids.map((g) => {
    const row = d.byUnit.find((r) => g.id.startsWith(r.key));
    const target = row ? row.key : g.id;
    const rate = row ? row.closureRate : (g.id === d.unit ? d.closureRate : null);
    const pts = g.boundary.map(px);
    const cx = pts.reduce((a, p) => a + p[0], 0) / pts.length, cy = pts.reduce((a, p) => a + p[1], 0) / pts.length;
    return `<path data-unit="${esc(target)}" data-grid="${esc(g.id)}" d="M${pts.map((p) => p[0].toFixed(1) + ',' + p[1].toFixed(1)).join('L')}Z" fill="${colour(rate)}">` +
      `<title>${esc(g.name)} · ${esc(t('closureRate'))} ${pct(rate)}</title></path>` +
      `<text x="${cx.toFixed(1)}" y="${cy.toFixed(1)}" text-anchor="middle">${esc(g.name)}</text>`;
  });
  $('map').innerHTML = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(t('map'))}">${parts.join('')}</svg>`;
}

// --- live updates: server-sent events read with fetch (it sends the token) ---

function stopStream() {
  if (S.stream) S.stream.abort();
  S.stream = null;
  $('live').classList.remove('on');
}

async function follow() {
  stopStream();
  const ctl = new AbortController();
  S.stream = ctl;
  while (!ctl.signal.aborted) {
    try {
      const r = await api('/v1/stats/events?unit=' + encodeURIComponent(S.unit), { signal: ctl.signal });
      if (!r.ok || !r.body) throw new Error('stream ' + r.status);
      $('live').classList.add('on');
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          if (/^event: stats$/m.test(block)) {
            $('live').classList.add('flash');
            setTimeout(() => $('live').classList.remove('flash'), 600);
            load();
          }
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    $('live').classList.remove('on');
    await new Promise((res) => setTimeout(res, 2000));
  }
}

// --- CSV export of each table ---

async function csv(table) {
  const r = await api('/v1/stats?' + query({ format: 'csv', table }));
  if (!r.ok) return;
  const blob = await r.blob();
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `stats-${S.unit}-${table}-${S.data.from}-${S.data.to}.csv`;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

// --- wiring ---

document.addEventListener('DOMContentLoaded', () => {
  translate();
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('lang').addEventListener('click', () => {
    S.lang = S.lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('gk.lang', S.lang);
    translate();
    if (S.data) load();
  });
  $('preset').addEventListener('change', () => {
    S.preset = $('preset').value;
    if (S.preset !== 'custom') [S.from, S.to] = presetPeriod(S.preset);
    $('from').value = S.from; $('to').value = S.to;
    writeHash(); load();
  });
  for (const id of ['from', 'to']) {
    $(id).addEventListener('change', () => {
      if (!$('from').value || !$('to').value) return;
      S.preset = 'custom'; $('preset').value = 'custom';
      S.from = $('from').value; S.to = $('to').value;
      writeHash(); load();
    });
  }
  document.addEventListener('click', (ev) => {
    const csvButton = ev.target.closest('button.csv');
    if (csvButton) { csv(csvButton.dataset.table); return; }
    const target = ev.target.closest('#crumbs a, #ranking tbody tr, #map path');
    if (target && target.dataset.unit && target.dataset.unit !== S.unit) go(target.dataset.unit);
  });
  window.addEventListener('resize', () => Object.values(S.charts).forEach((c) => c.resize()));
  if (S.token && S.user) start(); else showLogin();
});
