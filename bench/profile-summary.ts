import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { originalPositionFor, TraceMap } from '@jridgewell/trace-mapping';

/**
 * Where a process's time went, from the `.cpuprofile` that `node --cpu-prof` writes: V8's sampled call tree
 * (`nodes`, each with a `callFrame`), the node that was on top of the stack at each sample (`samples`) and the time
 * since the previous sample (`timeDeltas`, µs). Self time only: a sample counts for the function it found running.
 * No npm package reads this format and summarises it (the known ones draw flame graphs), so this is a small reader.
 * Positions in dist/*.js are mapped back to src/ through the bundle's source map.
 */

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileSummary {
  readonly label: string;
  /** Milliseconds of samples inside the window summarised. */
  readonly sampledMs: number;
  readonly gcPct: number;
  readonly idlePct: number;
  /** V8's "(program)": native code outside JavaScript functions (the event loop, libuv, bindings without a frame). */
  readonly programPct: number;
  readonly topFunctions: readonly { name: string; where: string; group: string; pct: number }[];
  readonly groups: readonly { group: string; pct: number }[];
}

/** Microseconds on the monotonic clock that V8's profiler also uses (`process.hrtime`), for windows. */
export const monotonicMicros = (): number => Number(process.hrtime.bigint() / 1000n);

/**
 * Summarises one profile, counting only the samples inside `window` (µs, monotonic) when given: the load test, not
 * the start-up or the seeding before it.
 */
export function summariseProfile(file: string, label: string, window?: { from: number; to: number }, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMicros = new Map<number, number>();
  let at = profile.startTime;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (window && (at < window.from || at > window.to)) continue;
    // A sample stands for the time until the next one.
    const span = profile.timeDeltas[i + 1] ?? 0;
    const id = profile.samples[i]!;
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + span);
    total += span;
  }
  const locate = locator();
  const functions = new Map<string, { name: string; where: string; group: string; micros: number }>();
  const groups = new Map<string, number>();
  const special = { '(garbage collector)': 0, '(idle)': 0, '(program)': 0 };
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName in special) {
      special[frame.functionName as keyof typeof special] += micros;
      continue;
    }
    const { where, group } = locate(frame);
    const name = frame.functionName || '(anonymous)';
    const key = `${name} ${where}`;
    const entry = functions.get(key) ?? { name, where, group, micros: 0 };
    entry.micros += micros;
    functions.set(key, entry);
    groups.set(group, (groups.get(group) ?? 0) + micros);
  }
  const pct = (micros: number) => (total === 0 ? 0 : Math.round((micros / total) * 1000) / 10);
  for (const [name, micros] of Object.entries(special)) groups.set(name, micros);
  return {
    label,
    sampledMs: Math.round(total / 1000),
    gcPct: pct(special['(garbage collector)']),
    idlePct: pct(special['(idle)']),
    programPct: pct(special['(program)']),
    topFunctions: [...functions.values()]
      .sort((a, b) => b.micros - a.micros)
      .slice(0, top)
      .map(({ micros, ...f }) => ({ ...f, pct: pct(micros) })),
    groups: [...groups.entries()]
      .sort((a, b) => b[1] - a[1])
      .filter(([, micros]) => micros > 0)
      .map(([group, micros]) => ({ group, pct: pct(micros) })),
  };
}

/**
 * Where a frame is (`src/…/file.ts:line` through the source map for our bundle, `package/file:line` in
 * node_modules, `node:…` for Node's own) and the group it counts in: our source file's folder, the npm package,
 * Node's own JavaScript, native code (V8 builtins and Node's C++ bindings: no script), or "other".
 */
function locator() {
  const maps = new Map<string, TraceMap | null>();
  const mapOf = (url: string): TraceMap | null => {
    if (!maps.has(url)) {
      try {
        const path = fileURLToPath(url);
        maps.set(url, new TraceMap(readFileSync(`${path}.map`, 'utf8'), url));
      } catch {
        maps.set(url, null);
      }
    }
    return maps.get(url)!;
  };
  const cwd = process.cwd();
  return (frame: CallFrame): { where: string; group: string } => {
    const { url } = frame;
    const line = frame.lineNumber + 1;
    if (url === '') return { where: '(native)', group: 'native (V8 builtins, Node C++)' };
    if (url.startsWith('node:')) return { where: `${url}:${line}`, group: 'node internals (JS)' };
    const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
    if (modules) return { where: `${modules[1]}/${modules[2]}:${line}`, group: modules[1]! };
    if (url.startsWith('file:') && /\/dist\/[^/]+\.js$/.test(url)) {
      const map = mapOf(url);
      const original = map ? originalPositionFor(map, { line, column: Math.max(0, frame.columnNumber) }) : null;
      if (original?.source) {
        const source = relative(cwd, fileURLToPath(original.source));
        return { where: `${source}:${original.line}`, group: source.replace(/\/[^/]+$/, '') };
      }
    }
    const path = url.startsWith('file:') ? relative(cwd, fileURLToPath(url)) : url;
    return { where: `${path}:${line}`, group: /^(src|bench|tools)\//.test(path) ? path.replace(/\/[^/]+$/, '') : 'other' };
  };
}

/** The summary as a few lines of text (the bench prints them and writes them beside the profiles). */
export function formatSummary(s: ProfileSummary): string {
  const lines = [
    `### ${s.label}: ${(s.sampledMs / 1000).toFixed(1)} s sampled; GC ${s.gcPct} %, idle ${s.idlePct} %, program ${s.programPct} %`,
    `by module: ${s.groups.slice(0, 12).map((g) => `${g.group} ${g.pct} %`).join(', ')}`,
    'top functions by self time:',
    ...s.topFunctions.map((f) => `  ${String(f.pct).padStart(5)} %  ${f.name}  ${f.where}`),
  ];
  return lines.join('\n');
}

// `npx tsx bench/profile-summary.ts <file.cpuprofile>…`: the same summary for any profile.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const file of process.argv.slice(2)) console.log(`${formatSummary(summariseProfile(file, file))}\n`);
}
