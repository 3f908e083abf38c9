// npm runs `prepare` after `npm install` / `npm ci` in this folder: it builds the accountants' console.
// With the dev dependencies omitted (`--omit=dev`) there is no Vite to build it with: that install still succeeds,
// says so, and the service answers 503 at / naming `npm run build:console` until it is built where Vite is installed.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

try {
  createRequire(import.meta.url).resolve('vite/package.json');
} catch {
  console.warn('prepare: Vite is not installed (dev dependencies omitted), so the console is not built; run `npm run build:console` where it is');
  process.exit(0);
}
const build = spawnSync('npm', ['run', 'build:console'], { stdio: 'inherit', shell: process.platform === 'win32' });
process.exit(build.status ?? 1);
