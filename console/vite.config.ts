import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * `npm run build:console` (and `npm install`, through `prepare`): console/ → dist/console/, which the service
 * serves at `/` (index.html) and /console/assets/ (content-hashed, cached for a year). CONSOLE_DIR in
 * src/composition-root.ts names the same folder.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    // The page's CSP allows scripts from files only: no inline polyfill.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
});
