# Build stage: dev dependencies and the TypeScript compiler.
# Node 24: the current LTS (Node 20 reached end of life on 2026-04-30); CI runs the suite on both.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY scripts ./scripts
COPY cli.ts ./
COPY src ./src
COPY test ./test
COPY config ./config
RUN npm ci --no-audit --no-fund

# Run stage: production dependencies and the compiled output only, as a non-root user.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config ./config
RUN ln -s /app/dist/cli.js /usr/local/bin/profile && chmod +x /app/dist/cli.js \
  && mkdir -p /data/ods && chown -R node:node /data
USER node
ENV ODS_DIR=/data/ods PROFILE_DATA_DIR=/data LOG_FORMAT=json
EXPOSE 8080
# `profile` execs node (#!/usr/bin/env node), so node is PID 1: the CLI handles SIGTERM
# itself (stops reading, finishes and acks its batch, closes) and exits 0.
CMD ["profile", "up", "--host", "0.0.0.0"]
