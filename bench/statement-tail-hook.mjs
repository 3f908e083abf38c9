// Loaded into the service by bench/statement-tail.ts only (`node --import`): where a statement load's tail comes
// from. It changes no answer: it listens to the HTTP server's request event and the response's finish, the event
// loop's delay (monitorEventLoopDelay) and GC (PerformanceObserver). `GET /__tail` is answered here, before
// fastify, with what was seen since the last `/__tail` (then reset): per kind of request (statement, busy,
// health) the server-side latency from the request event to the response's finish, the event loop's delay, GC
// pauses by kind, the process's CPU and heap spaces, the busy month's requests taken apart (before the statement
// query, to its first row, its rows, after them; GC and CPU in the request: median and slowest), and the coalesced
// version reads (how many, ids a read, round trip).
import http from 'node:http';
import v8 from 'node:v8';
import { createRequire } from 'node:module';
import { createHistogram, monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';

const BUSY = process.env.TAIL_BUSY_ID ?? '\u0000';
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
let kinds = new Map();
let gc = new Map();
let cpu0 = process.cpuUsage();
let since = performance.now();
// Latency at or above this (ms) is counted apart with what else happened while it was open.
const SLOW_MS = Number(process.env.TAIL_SLOW_MS ?? 20);
let inFlight = 0;
let maxInFlight = 0;

// The busy month's requests one by one (one connection: never two at once): the parts of the slowest are reported.
let current = null;
let busyTraces = [];
const pg = createRequire(`${process.cwd()}/`)('pg');
const query = pg.Client.prototype.query;
let versionReads = { n: 0, ids: 0, h: createHistogram() };
pg.Client.prototype.query = function (config, ...rest) {
  if (typeof config === 'object' && config !== null && typeof config.text === 'string' && config.text.includes('tableoid::bigint::text as read_model')) {
    // A coalesced version read: how many ids, and its round trip.
    const v = versionReads;
    v.n++;
    v.ids += Array.isArray(config.values?.[0]) ? config.values[0].length : 0;
    const t0 = performance.now();
    const conn = this.connection;
    const onReady = () => {
      v.h.record(Math.max(1, Math.round((performance.now() - t0) * 1e6)));
      conn.off('readyForQuery', onReady);
    };
    conn.on('readyForQuery', onReady);
  }
  const t = current;
  if (t && typeof config === 'object' && config !== null && typeof config.text === 'string' && config.text.includes('with period as')) {
    const q = (t.q = { calledMs: t.at() });
    const conn = this.connection;
    const onRow = () => (q.firstRowMs ??= t.at());
    const onReady = () => {
      q.readyMs = t.at();
      conn.off('dataRow', onRow).off('readyForQuery', onReady);
    };
    conn.on('dataRow', onRow).on('readyForQuery', onReady);
  }
  return query.call(this, config, ...rest);
};

const GC_KINDS = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const k = GC_KINDS[e.detail?.kind ?? e.kind] ?? String(e.detail?.kind);
    const g = gc.get(k) ?? { n: 0, totalMs: 0, maxMs: 0, over5: 0 };
    g.n++;
    g.totalMs += e.duration;
    g.maxMs = Math.max(g.maxMs, e.duration);
    if (e.duration >= 5) g.over5++;
    gc.set(k, g);
    if (current) current.gcMs += e.duration;
  }
}).observe({ entryTypes: ['gc'] });

const kindOf = (url) => (url.startsWith('/health') ? 'health' : url.includes(BUSY) ? 'busy' : url.includes('/statement') ? 'statement' : 'other');

function report() {
  const out = { seconds: +((performance.now() - since) / 1000).toFixed(2), maxInFlight, kinds: {}, gc: {}, loop: {} };
  for (const [k, v] of kinds) {
    const h = v.h;
    out.kinds[k] = {
      n: h.count,
      p50: +(h.percentile(50) / 1e6).toFixed(2),
      p90: +(h.percentile(90) / 1e6).toFixed(2),
      p99: +(h.percentile(99) / 1e6).toFixed(2),
      p999: +(h.percentile(99.9) / 1e6).toFixed(2),
      max: +(h.max / 1e6).toFixed(2),
      slow: v.slow,
    };
  }
  busyTraces.sort((a, b) => b.totalMs - a.totalMs);
  if (busyTraces.length > 0) {
    out.slowestBusy = busyTraces.slice(0, 8);
    const median = (f) => {
      const xs = busyTraces.map((t) => t[f]).filter((x) => typeof x === 'number').sort((a, b) => a - b);
      return xs[Math.floor(xs.length / 2)];
    };
    out.medianBusy = Object.fromEntries(Object.keys(busyTraces[0]).map((f) => [f, median(f)]));
  }
  busyTraces = [];
  for (const [k, g] of gc) out.gc[k] = { n: g.n, totalMs: +g.totalMs.toFixed(1), maxMs: +g.maxMs.toFixed(2), over5: g.over5 };
  out.loop = {
    p50: +(loop.percentile(50) / 1e6).toFixed(2),
    p99: +(loop.percentile(99) / 1e6).toFixed(2),
    max: +(loop.max / 1e6).toFixed(2),
  };
  if (versionReads.n > 0) out.versionReads = { n: versionReads.n, idsPerRead: +(versionReads.ids / versionReads.n).toFixed(1), p50: +(versionReads.h.percentile(50) / 1e6).toFixed(2), p99: +(versionReads.h.percentile(99) / 1e6).toFixed(2), max: +(versionReads.h.max / 1e6).toFixed(2) };
  versionReads = { n: 0, ids: 0, h: createHistogram() };
  out.heapMb = Object.fromEntries(v8.getHeapSpaceStatistics().filter((x) => x.space_size > 0).map((x) => [x.space_name, +(x.space_size / 1048576).toFixed(1)]));
  const c = process.cpuUsage(cpu0);
  out.cpuMs = Math.round((c.user + c.system) / 1000);
  kinds = new Map();
  gc = new Map();
  loop.reset();
  cpu0 = process.cpuUsage();
  since = performance.now();
  maxInFlight = inFlight;
  return out;
}

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, res) {
  if (event === 'request' && req.url === '/__tail') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(report()));
    return true;
  }
  if (event === 'request') {
    const t0 = performance.now();
    const kind = kindOf(req.url);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const trace = kind === 'busy' ? { gcMs: 0, q: null, at: () => +(performance.now() - t0).toFixed(2), cpu0: process.cpuUsage() } : null;
    if (trace) current = trace;
    res.once('finish', () => {
      if (trace) {
        current = null;
        const c = process.cpuUsage(trace.cpu0);
        const { q } = trace;
        busyTraces.push({
          totalMs: trace.at(),
          beforeQueryMs: q?.calledMs,
          toFirstRowMs: q && +(q.firstRowMs - q.calledMs).toFixed(2),
          rowsMs: q && +(q.readyMs - q.firstRowMs).toFixed(2),
          afterMs: q && +(trace.at() - q.readyMs).toFixed(2),
          gcMs: +trace.gcMs.toFixed(2),
          nodeCpuMs: +((c.user + c.system) / 1000).toFixed(2),
        });
      }
      inFlight--;
      const ms = performance.now() - t0;
      let v = kinds.get(kind);
      if (!v) kinds.set(kind, (v = { h: createHistogram(), slow: 0 }));
      v.h.record(Math.max(1, Math.round(ms * 1e6)));
      if (ms >= SLOW_MS) v.slow++;
    });
  }
  return emit.apply(this, arguments);
};
