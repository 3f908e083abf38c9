# Build stage: the dev dependencies (esbuild, Vite, Preact, uPlot) build the accountants' console and bundle the
# service and the CLI into plain JavaScript (tools/build.mjs); only dist/ leaves this stage.
FROM node:20-slim AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
# The console first, so that source edits of the service reuse its layer.
COPY console ./console
RUN npm run build:console
COPY tsconfig.json ./
COPY tools/build.mjs ./tools/
COPY src ./src
RUN npm run build

# The service as it runs in production: compiled JavaScript on plain Node, no loader, no transpiling at run time.
FROM node:20-slim

WORKDIR /app

# Dependencies first so source edits reuse this layer. Install scripts are not needed by anything here.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

COPY --from=build /build/dist ./dist
RUN mkdir -p /app/data && chown node:node /app/data

USER node
ENV HOST=0.0.0.0 \
    PORT=3000
EXPOSE 3000

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"

# A bounded heap: the working set is one batch or one request; unbounded, V8 lets garbage pile up to ~400 MB.
# The CLI is dist/cli.js: `docker compose exec ledger node dist/cli.js keys create …`.
CMD ["node", "--max-old-space-size=192", "dist/main.js"]
