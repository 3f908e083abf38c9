import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { sendProblem } from './problem';

export interface ConsoleRouteOptions {
  /** The built console (`npm run build:console` writes dist/console): index.html and assets/. */
  readonly dir: string;
}

/**
 * The page may only load what this service serves and talk to this service: it holds an API key in its tab.
 * Styles are files too (uPlot and Preact set element styles through the DOM, which CSP does not govern).
 */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The accountants' console: the page at `/` (never cached, so a new build is picked up at once) and its
 * content-hashed assets under /console/assets/ (cached for a year: a new build has new names). The page is public;
 * every call it makes carries the key the user typed. Missing build → 503 naming the command that makes it.
 */
export const consoleRoutes: FastifyPluginAsync<ConsoleRouteOptions> = async (app, { dir }) => {
  const indexFile = join(dir, 'index.html');
  app.get('/', { config: { access: 'open' }, schema: { hide: true } }, async (request, reply) => {
    let page: Buffer;
    try {
      page = await readFile(indexFile);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      request.log.warn({ indexFile }, 'the console is not built');
      return sendProblem(reply, 503, 'console-not-built', 'The console is not built', {
        detail: 'run `npm run build:console` (npm install runs it unless scripts are ignored), then reload',
      });
    }
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('content-security-policy', PAGE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(page);
  });

  await app.register(async (assets) => {
    assets.addHook('onRoute', (route) => void (route.config = { ...route.config, access: 'open' }));
    await assets.register(fastifyStatic, {
      root: join(dir, 'assets'),
      prefix: '/console/assets/',
      decorateReply: false,
      index: false,
      list: false,
      // Vite names every asset by its content hash: a file at a name never changes.
      maxAge: '365d',
      immutable: true,
      suppressWarning: true,
    });
  });
};
