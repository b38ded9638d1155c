# The meshcap image: istio-init (`meshcap istio-iptables ...`), istio-validation, the webhook
# (`meshcap webhook ...`), node-prep (modprobe) and the CNI node agent (`meshcap cni agent`, which
# copies this image's meshcap to the node as the meshcap-cni plugin). Debian slim because the capture
# needs the real iptables (legacy and nft), nftables and iproute2 binaries, and kmod for node-prep.
#
# meshcap itself is one file: a Node single executable (node with meshcap's startup snapshot and
# assets injected, scripts/build-sea.mjs), so the runtime stage needs no Node.js image and holds one
# copy of node, not two. Where this node cannot build one (single executables are experimental in
# Node 20), the runtime stage gets node and the one-file build instead: the same commands, the plain
# path, and no CNI plugin to install.
#
# Tested as written: test/runtime/image.test.ts builds it with buildah (--pull=never) over local
# stand-ins for both FROM images and runs it under a private containerd (scripts/image/build.sh).
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY bin ./bin
COPY scripts/cjs-bundle.mjs scripts/bundle.mjs scripts/build-sea.mjs ./scripts/
# /out is the runtime stage's files as they will lie: /opt/meshcap/meshcap and the `meshcap` on PATH.
# (Tests and benchmarks are not part of the image.)
# --build-arg MESHCAP_SEA=0 takes the plain path on purpose (scripts/build-sea.mjs then builds nothing):
# how the fallback is built and tested (test/runtime/image.test.ts) on a node that can build one.
ARG MESHCAP_SEA=
RUN npm run build && node scripts/build-sea.mjs \
 && mkdir -p /out/opt/meshcap /out/usr/local/bin \
 && if [ -x dist/sea/meshcap ]; then cp dist/sea/meshcap /out/opt/meshcap/meshcap; \
    else mkdir -p /out/opt/meshcap/dist \
      && cp package.json /out/opt/meshcap/ && cp -r bin /out/opt/meshcap/ \
      && cp dist/meshcap.cjs /out/opt/meshcap/dist/ && cp "$(command -v node)" /out/usr/local/bin/node \
      && ln -s bin/meshcap /out/opt/meshcap/meshcap; fi \
 && ln -s /opt/meshcap/meshcap /out/usr/local/bin/meshcap

FROM debian:bookworm-slim
# One layer for the system tools (apt's lists and logs removed in the same layer, so they never ship).
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables nftables iproute2 kmod \
 && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/cache/debconf/*-old /var/lib/dpkg/*-old
COPY --from=build /out/ /
# istio-init runs as root by its pod spec (runAsUser: 0); everything else runs as this user.
USER 65532:65532
ENTRYPOINT ["meshcap"]
