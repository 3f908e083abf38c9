// npm runs `prepare` after `npm install` / `npm ci` in this folder: it builds the service and the CLI into dist/
// (tools/build.mjs, esbuild) and the accountants' console into dist/console (Vite).
// With the dev dependencies omitted (`--omit=dev`) there is neither esbuild nor Vite: that install still succeeds and
// says so; `npm start` then refuses to run a missing or stale build (tools/build.mjs), and the service answers 503 at
// / naming `npm run build:console` until the console is built where Vite is installed.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const installed = (name) => {
  try {
    createRequire(import.meta.url).resolve(name);
    return true;
  } catch {
    return false;
  }
};

if (!installed('esbuild')) {
  console.warn('prepare: esbuild is not installed (dev dependencies omitted), so the service is not built; run `npm run build` where it is');
} else {
  const server = spawnSync(process.execPath, [join(import.meta.dirname, 'build.mjs')], { stdio: 'inherit' });
  if (server.status !== 0) process.exit(server.status ?? 1);
}
if (!installed('vite/package.json')) {
  console.warn('prepare: Vite is not installed (dev dependencies omitted), so the console is not built; run `npm run build:console` where it is');
  process.exit(0);
}
const build = spawnSync('npm', ['run', 'build:console'], { stdio: 'inherit', shell: process.platform === 'win32' });
process.exit(build.status ?? 1);
