# The meshcap image: istio-init (`meshcap istio-iptables ...`), the webhook
# (`meshcap webhook ...`) and node-prep (modprobe). Debian slim because the
# capture needs the real iptables (legacy and nft), nftables and iproute2
# binaries, and kmod for node-prep; Node.js runs meshcap itself.
#
# Tested as written: test/runtime/image.test.ts builds it with buildah
# (--pull=never) over a local stand-in for the FROM image and runs it under a
# private containerd (scripts/image/build.sh).
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# bin/meshcap loads the esbuild bundle (dist/bundle), which `npm run build` makes
# (tests and benchmarks are not part of the image, so they are not copied).
RUN npm run build && npm prune --omit=dev --no-audit --no-fund \
 && find node_modules -depth -type d -empty -delete

FROM node:20-bookworm-slim
# One layer for the system tools (apt's lists and logs removed in the same
# layer, so they never ship) and the `meshcap` command on PATH.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables nftables iproute2 kmod \
 && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/cache/debconf/*-old /var/lib/dpkg/*-old \
 && ln -s /opt/meshcap/bin/meshcap /usr/local/bin/meshcap
WORKDIR /opt/meshcap
# Only what bin/meshcap loads: package.json (version), the production
# dependencies, the bundle and the launcher.
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/bundle ./dist/bundle
COPY bin ./bin
# istio-init runs as root by its pod spec (runAsUser: 0); everything else runs as this user.
USER 65532:65532
ENTRYPOINT ["meshcap"]
