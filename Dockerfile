# syntax=docker/dockerfile:1
# Multi-stage: build with dev dependencies (tsc, node-gyp toolchain for better-sqlite3), then
# ship only production dependencies and the compiled output.
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY config ./config
COPY mesh ./mesh
COPY store ./store
COPY actors ./actors
COPY flows ./flows
COPY vasm ./vasm
COPY node ./node
COPY bench ./bench
COPY deploy ./deploy
COPY proto ./proto
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    VOIKE_LISTEN=/ip4/0.0.0.0/tcp/4001 \
    VOIKE_API=0.0.0.0:50051 \
    VOIKE_HTTP=0.0.0.0:8080 \
    VOIKE_DATA_DIR=/data
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/proto ./proto
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
EXPOSE 4001 50051 8080
USER node
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:8080/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "dist/node/cli.js"]
# Genesis: `docker run IMAGE genesis`; members: `docker run IMAGE node --genesis host:4001`.
CMD ["node"]
