#!/usr/bin/env bash
# Certificate setup without cert-manager: a private CA and a serving certificate
# for the webhook Service, stored in the Secret the Deployment mounts, and the CA
# written into the MutatingWebhookConfiguration's caBundle.
#
#   bash deploy/gen-certs.sh                 # create the Secret and patch caBundle (needs kubectl)
#   bash deploy/gen-certs.sh --out DIR       # only write ca.crt, tls.crt, tls.key to DIR
#
# Re-run it to rotate: the Secret is replaced in place and the webhook reloads it.
# The CA is regenerated too, so caBundle is patched in the same run.
set -euo pipefail
NAMESPACE=${NAMESPACE:-meshcap-system}
SERVICE=${SERVICE:-meshcap-webhook}
SECRET=${SECRET:-meshcap-webhook-tls}
WEBHOOK_CONFIG=${WEBHOOK_CONFIG:-meshcap-sidecar-injector}
DAYS=${DAYS:-365}
OUT=""
if [ "${1:-}" = "--out" ]; then OUT=${2:?--out needs a directory}; fi

dir=${OUT:-$(mktemp -d)}
mkdir -p "$dir"
[ -z "$OUT" ] && trap 'rm -rf "$dir"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$DAYS" \
  -subj "/CN=meshcap-webhook-ca" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=$SERVICE.$NAMESPACE.svc" -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s.%s.svc,DNS:%s.%s.svc.cluster.local\nextendedKeyUsage=serverAuth\n' \
  "$SERVICE" "$NAMESPACE" "$SERVICE" "$NAMESPACE" > "$dir/ext.cnf"
openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
  -days "$DAYS" -extfile "$dir/ext.cnf" -out "$dir/tls.crt" 2>/dev/null
rm -f "$dir/tls.csr" "$dir/ext.cnf" "$dir/ca.srl"

if [ -n "$OUT" ]; then
  rm -f "$dir/ca.key"
  echo "wrote $dir/ca.crt $dir/tls.crt $dir/tls.key"
  exit 0
fi

kubectl -n "$NAMESPACE" create secret tls "$SECRET" --cert="$dir/tls.crt" --key="$dir/tls.key" \
  --dry-run=client -o yaml | kubectl apply -f -
ca=$(base64 < "$dir/ca.crt" | tr -d '\n')
kubectl patch mutatingwebhookconfiguration "$WEBHOOK_CONFIG" --type=json \
  -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$ca\"}]"
echo "secret $NAMESPACE/$SECRET and caBundle of $WEBHOOK_CONFIG updated"
