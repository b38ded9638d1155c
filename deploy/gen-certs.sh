#!/usr/bin/env bash
# Certificate setup without cert-manager: a private CA and a serving certificate
# for the webhook Service, stored in the Secret the Deployment mounts, and the CA
# written into the MutatingWebhookConfiguration's caBundle.
#
#   bash deploy/gen-certs.sh                 # create/renew the Secret, set caBundle (needs kubectl)
#   bash deploy/gen-certs.sh --out DIR       # only write ca.crt, ca.key, tls.crt, tls.key to DIR
#
# Re-run it to renew the serving certificate. The CA is kept (in the Secret
# $CA_SECRET, or in DIR), so caBundle does not change and there is no window in
# which the API server trusts a CA the webhook pods do not serve yet: kubelet
# takes up to a minute to update a mounted Secret, and with failurePolicy: Fail
# a mismatch would stop pod creation. NEW_CA=1 rotates the CA itself: caBundle
# then holds the old and the new CA, so both the old and the new serving
# certificate are trusted while the pods pick up the new one; run it again
# later without NEW_CA to drop the old CA.
set -euo pipefail
NAMESPACE=${NAMESPACE:-meshcap-system}
SERVICE=${SERVICE:-meshcap-webhook}
SECRET=${SECRET:-meshcap-webhook-tls}
CA_SECRET=${CA_SECRET:-meshcap-webhook-ca}
WEBHOOK_CONFIG=${WEBHOOK_CONFIG:-meshcap-sidecar-injector}
DAYS=${DAYS:-365}
CA_DAYS=${CA_DAYS:-3650}
NEW_CA=${NEW_CA:-0}
OUT=""
if [ "${1:-}" = "--out" ]; then OUT=${2:?--out needs a directory}; fi

dir=${OUT:-$(mktemp -d)}
mkdir -p "$dir"
[ -z "$OUT" ] && trap 'rm -rf "$dir"' EXIT
umask 077

# The existing CA, if any: from DIR, or from the CA Secret.
if [ -z "$OUT" ] && kubectl -n "$NAMESPACE" get secret "$CA_SECRET" >/dev/null 2>&1; then
  kubectl -n "$NAMESPACE" get secret "$CA_SECRET" -o jsonpath='{.data.tls\.crt}' | base64 -d > "$dir/ca.crt"
  kubectl -n "$NAMESPACE" get secret "$CA_SECRET" -o jsonpath='{.data.tls\.key}' | base64 -d > "$dir/ca.key"
fi
old_ca=""
if [ -s "$dir/ca.crt" ] && [ -s "$dir/ca.key" ]; then
  old_ca=$(cat "$dir/ca.crt")
fi
if [ -z "$old_ca" ] || [ "$NEW_CA" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$CA_DAYS" \
    -subj "/CN=meshcap-webhook-ca" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
fi

openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=$SERVICE.$NAMESPACE.svc" -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s.%s.svc,DNS:%s.%s.svc.cluster.local\nextendedKeyUsage=serverAuth\n' \
  "$SERVICE" "$NAMESPACE" "$SERVICE" "$NAMESPACE" > "$dir/ext.cnf"
openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
  -days "$DAYS" -extfile "$dir/ext.cnf" -out "$dir/tls.crt" 2>/dev/null
rm -f "$dir/tls.csr" "$dir/ext.cnf" "$dir/ca.srl"

# What the API server trusts: the current CA, plus the previous one while a CA rotation is under way.
bundle=$(cat "$dir/ca.crt")
if [ -n "$old_ca" ] && [ "$old_ca" != "$bundle" ]; then bundle=$(printf '%s\n%s\n' "$bundle" "$old_ca"); fi
printf '%s\n' "$bundle" > "$dir/ca-bundle.crt"

if [ -n "$OUT" ]; then
  echo "wrote $dir/ca.crt $dir/ca.key $dir/ca-bundle.crt $dir/tls.crt $dir/tls.key (keep ca.key private; it is reused on the next run)"
  exit 0
fi

kubectl -n "$NAMESPACE" create secret tls "$CA_SECRET" --cert="$dir/ca.crt" --key="$dir/ca.key" \
  --dry-run=client -o yaml | kubectl apply -f -
# caBundle first: the new bundle trusts both certificates, so it is safe before the pods reload.
ca=$(base64 < "$dir/ca-bundle.crt" | tr -d '\n')
kubectl patch mutatingwebhookconfiguration "$WEBHOOK_CONFIG" --type=json \
  -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$ca\"}]"
kubectl -n "$NAMESPACE" create secret tls "$SECRET" --cert="$dir/tls.crt" --key="$dir/tls.key" \
  --dry-run=client -o yaml | kubectl apply -f -
echo "secret $NAMESPACE/$SECRET renewed; caBundle of $WEBHOOK_CONFIG trusts $(grep -c 'BEGIN CERTIFICATE' "$dir/ca-bundle.crt") CA(s)"
