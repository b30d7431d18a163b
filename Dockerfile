# Tollgate gateway image. Build: docker build -t tollgate-gateway .
# Stage 1 compiles TypeScript with every dependency; stage 2 keeps only production dependencies and dist/.

FROM node:20-slim AS build
WORKDIR /app
# better-sqlite3 falls back to compiling when no prebuilt binary matches the platform.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-slim AS runtime
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
# node:20-slim has no curl; Node's own fetch probes liveness.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM reaches node directly (exec form): the gateway drains and exits within TOLLGATE_SHUTDOWN_TIMEOUT_MS.
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/gateway/main.js"]
