# The accountants' console: built with the dev dependencies (Vite, Preact, uPlot), copied into the image as files.
FROM node:20-slim AS console
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY console ./console
RUN npm run build:console

# The service as it runs in production: TypeScript executed by tsx, no build step.
FROM node:20-slim

WORKDIR /app

# Dependencies first so source edits reuse this layer. Install scripts are not needed by anything here.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

COPY tsconfig.json ./
COPY src ./src
COPY --from=console /build/dist/console ./dist/console
RUN mkdir -p /app/data && chown node:node /app/data

USER node
ENV HOST=0.0.0.0 \
    PORT=3000
EXPOSE 3000

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"

# A bounded heap: the working set is one batch or one request; unbounded, V8 lets garbage pile up to ~400 MB.
CMD ["node", "--max-old-space-size=192", "--import", "tsx", "src/main.ts"]
