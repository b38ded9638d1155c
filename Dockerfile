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
COPY bin ./bin
COPY scripts/bundle.mjs scripts/build-sea.mjs ./scripts/
# dist/meshcap.cjs: the whole CLI as one CommonJS file, its dependencies included,
# so no node_modules ships. dist/sea/meshcap: the single executable with a V8
# startup snapshot (istio-init starts ~12 ms sooner; README, "Start-up"), kept
# only where this node builds one that answers exactly like bin/meshcap; the
# directory is empty otherwise. (Tests and benchmarks are not part of the image.)
RUN npm run build && node scripts/build-sea.mjs && mkdir -p dist/sea

FROM node:20-bookworm-slim
# One layer for the system tools (apt's lists and logs removed in the same
# layer, so they never ship) and the `meshcap` command on PATH.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables nftables iproute2 kmod \
 && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/cache/debconf/*-old /var/lib/dpkg/*-old
WORKDIR /opt/meshcap
# Only what runs: package.json (version), the bundle and its launcher, the single executable.
COPY --from=build /src/package.json ./
COPY --from=build /src/dist/meshcap.cjs ./dist/meshcap.cjs
COPY --from=build /src/dist/sea ./dist/sea
COPY bin ./bin
# `meshcap` is the single executable when it was built, else bin/meshcap on node: same commands, same output.
RUN if [ -x dist/sea/meshcap ]; then ln -s /opt/meshcap/dist/sea/meshcap /usr/local/bin/meshcap; \
    else ln -s /opt/meshcap/bin/meshcap /usr/local/bin/meshcap; fi
# istio-init runs as root by its pod spec (runAsUser: 0); everything else runs as this user.
USER 65532:65532
ENTRYPOINT ["meshcap"]
