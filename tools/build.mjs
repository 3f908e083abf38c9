// `npm run build`, and before `npm start` / `npm run ledger` (prestart, preledger) and in `prepare`: bundles the
// service (src/main.ts), its projection thread (src/projection-thread.ts) and the CLI (src/cli.ts) into dist/, so
// production runs plain JavaScript with no loader or transpiling at run time. npm packages stay external (imported
// from node_modules as they are); only our own modules are bundled, since tsconfig's extensionless imports
// ("bundler") do not resolve in Node as separate files. Each entry is a bundle of its own (no shared chunks: the
// thread loads the modules it uses again, as a worker must). Takes a fraction of a second, so a stale build cannot
// run after an edit.
// Without esbuild (an install with `--omit=dev`) nothing can be built: an existing build is used only when it is
// newer than every source file, otherwise this fails and says what to do.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const outputs = ['main.js', 'cli.js', 'projection-thread.js'].map((name) => join(root, 'dist', name));

let esbuild;
try {
  createRequire(import.meta.url).resolve('esbuild');
  esbuild = await import('esbuild');
} catch {
  esbuild = null;
}

if (esbuild) {
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: ['src/main.ts', 'src/cli.ts', 'src/projection-thread.ts'],
    outdir: 'dist',
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Files beside the bundle (not read at run time unless --enable-source-maps): profiles and stack traces map
    // back to src/ with them (bench/profile-summary.ts does).
    sourcemap: 'linked',
    logLevel: 'warning',
  });
} else {
  const newestSource = Math.max(...files(join(root, 'src')).map((f) => statSync(f).mtimeMs));
  const stale = outputs.filter((f) => !existsSync(f) || statSync(f).mtimeMs < newestSource);
  if (stale.length > 0) {
    console.error(`build: esbuild is not installed (dev dependencies omitted) and ${stale.join(', ')} is missing or older than src/; build where the dev dependencies are (npm run build)`);
    process.exit(1);
  }
  console.warn('build: esbuild is not installed; dist/ is newer than src/, using it as built');
}

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}
