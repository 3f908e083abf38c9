// Loaded into the service by bench/first-statement.ts only (`node --import`): times the parts of ONE statement
// request whose path contains FIRST_TIMING_PATH and writes them as a JSON line to FIRST_TIMING_OUT. It changes no
// answer: it listens to the HTTP server's request event, the pg connection's messages and the response's finish.
// Marks (ms from the request's arrival): each pg query's call, BindComplete, first and last DataRow, ReadyForQuery,
// the response's finish; the backend's CPU (schedstat) and minor faults around the statement query; the process's
// CPU and its GC pauses over the request.
import { appendFileSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';

// The service's own pg (resolved from its directory), whichever worktree this file is in.
const pg = createRequire(`${process.cwd()}/`)('pg');

const PATH = process.env.FIRST_TIMING_PATH;
const OUT = process.env.FIRST_TIMING_OUT;
let trace = null;

const backend = (pid) => {
  try {
    const cpuNs = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
    const minflt = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[7]);
    return { cpuMs: cpuNs / 1e6, minflt };
  } catch {
    return { cpuMs: Number.NaN, minflt: Number.NaN };
  }
};

const gcs = new PerformanceObserver((list) => {
  if (trace) for (const e of list.getEntries()) trace.gcMs += e.duration;
});
gcs.observe({ entryTypes: ['gc'] });

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, res) {
  if (event === 'request' && PATH && OUT && req.url.includes(PATH) && trace === null) {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    trace = { url: req.url, gcMs: 0, queries: [] };
    const at = () => +(performance.now() - t0).toFixed(2);
    trace.at = at;
    res.once('finish', () => {
      const cpu = process.cpuUsage(cpu0);
      const { at: _, ...out } = trace;
      out.finishMs = at();
      out.nodeCpuMs = +((cpu.user + cpu.system) / 1000).toFixed(2);
      out.gcMs = +out.gcMs.toFixed(2);
      out.bytes = Number(res.getHeader('content-length') ?? 0);
      appendFileSync(OUT, `${JSON.stringify(out)}\n`);
      trace = false;
    });
  }
  return emit.apply(this, arguments);
};

const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (config, ...rest) {
  if (trace && typeof config === 'object' && config !== null && typeof config.text === 'string') {
    const q = { kind: config.text.includes('with period as') ? 'statement' : config.text.slice(0, 30), calledMs: trace.at(), pid: this.processID };
    const t = trace;
    const statement = q.kind === 'statement';
    if (statement) q.backendBefore = backend(this.processID);
    const conn = this.connection;
    let rows = 0;
    const onBind = () => (q.bindCompleteMs ??= t.at());
    const onRow = () => {
      rows++;
      q.firstRowMs ??= t.at();
      q.lastRowMs = t.at();
    };
    const onReady = () => {
      q.readyMs = t.at();
      q.rows = rows;
      if (statement) {
        const after = backend(q.pid);
        q.backendCpuMs = +(after.cpuMs - q.backendBefore.cpuMs).toFixed(2);
        q.backendFaults = after.minflt - q.backendBefore.minflt;
        delete q.backendBefore;
      }
      conn.off('bindComplete', onBind).off('dataRow', onRow).off('readyForQuery', onReady);
    };
    conn.on('bindComplete', onBind).on('dataRow', onRow).on('readyForQuery', onReady);
    t.queries.push(q);
  }
  return query.call(this, config, ...rest);
};
