# Tollgate gateway image. Build: docker build -t tollgate-gateway .
# Stage 1 compiles TypeScript with every dependency; stage 2 keeps only production dependencies and dist/.
#
# Node: the image runs the current Active LTS line, 26 (LTS from 2026-10-28, end of life 2029-04-30). package.json's
# engines (>=20) is the oldest line the test suite still runs on, not a recommendation: Node 20 reached its end of
# life on 2026-04-30. better-sqlite3 comes from the lock file (12.x, built for Node 20 to 26); better-sqlite3 13
# needs Node >= 22, so it waits until the floor moves. test/package/runtime.test.ts checks that all of these agree.

FROM node:26-slim AS build
WORKDIR /app
# better-sqlite3 falls back to compiling when no prebuilt binary matches the platform.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The console (served at /console) is bundled by esbuild into dist/console as part of npm run build.
COPY console ./console
COPY scripts/build-console.ts ./scripts/build-console.ts
# The library leaves drivers and frameworks to its users (optional peer dependencies, installed here as dev
# dependencies). The gateway is such a user and needs them all, as the lock file resolved them: they move to the
# dependencies of the image's package.json before the dev dependencies are pruned.
RUN npm run build \
  && node -e "const fs = require('node:fs'); const p = JSON.parse(fs.readFileSync('package.json', 'utf8')); \
for (const name of Object.keys(p.peerDependencies)) { p.dependencies[name] = p.devDependencies[name]; delete p.devDependencies[name]; } \
fs.writeFileSync('package.json', JSON.stringify(p, null, 2));" \
  && npm prune --omit=dev --no-audit --no-fund

FROM node:26-slim AS runtime
ENV NODE_ENV=production \
    TOLLGATE_PORT=8080 \
    TOLLGATE_SQLITE_PATH=/var/lib/tollgate/tollgate.db
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The embedded SQLite store lives on a volume owned by the unprivileged runtime user.
RUN mkdir -p /var/lib/tollgate && chown node:node /var/lib/tollgate
VOLUME ["/var/lib/tollgate"]
USER node
EXPOSE 8080
# node:*-slim has no curl; Node's own fetch probes liveness.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM reaches node directly (exec form): the gateway drains and exits within TOLLGATE_SHUTDOWN_TIMEOUT_MS.
STOPSIGNAL SIGTERM
# A young generation of 8 MB semi-spaces (V8 grows them to 16 MB under load): the gateway's peak RSS under the ingress
# bench falls from 150–180 MB to 119–141 MB. 4 MB would save another ~10 MB for ~20 % more CPU per request, spent
# in scavenges (docs/benchmarks.md).
CMD ["node", "--max-semi-space-size=8", "--heap-growing-percent=25", "dist/src/gateway/main.js"]
