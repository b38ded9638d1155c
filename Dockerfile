# The meshcap image: istio-init (`meshcap istio-iptables ...`), the webhook
# (`meshcap webhook ...`) and node-prep (modprobe). Debian slim because the
# capture needs the real iptables (legacy and nft), nftables and iproute2
# binaries, and kmod for node-prep; Node.js runs meshcap itself.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables nftables iproute2 kmod \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/meshcap
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY bin ./bin
RUN ln -s /opt/meshcap/bin/meshcap /usr/local/bin/meshcap
# istio-init runs as root by its pod spec (runAsUser: 0); everything else runs as this user.
USER 65532:65532
ENTRYPOINT ["meshcap"]
