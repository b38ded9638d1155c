/**
 * The Multus side of the CNI layout: where the primary network is not
 * chained (OpenShift, Multus as the cluster network), meshcap-cni runs as an
 * extra network named by a NetworkAttachmentDefinition, and each injected pod
 * lists it in `k8s.v1.cni.cncf.io/networks`. The reference is added to what
 * the pod already lists (Multus's comma-separated `[namespace/]name[@iface]`
 * form or its JSON array form, kept as written), once. Pure.
 */
import { ConfigError } from '../config/parse.js';
import { isObject } from './json.js';

export const NETWORKS_ANNOTATION = 'k8s.v1.cni.cncf.io/networks';

export interface AttachmentRef {
  readonly namespace: string | undefined;
  readonly name: string;
}

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** `--cni-network-attachment [NAMESPACE/]NAME`: a namespace is a DNS label, a NetworkAttachmentDefinition name a DNS subdomain. */
export function parseAttachmentRef(text: string, subject = '--cni-network-attachment'): AttachmentRef {
  const parts = text.split('/');
  const [namespace, name] = parts.length === 2 ? [parts[0]!, parts[1]!] : [undefined, parts[0]!];
  if (parts.length > 2 || (namespace !== undefined && !LABEL.test(namespace)) || !SUBDOMAIN.test(name)) {
    throw new ConfigError(subject, text, 'is not a NetworkAttachmentDefinition reference', 'give [NAMESPACE/]NAME in lower case, e.g. default/meshcap-cni', '');
  }
  return { namespace, name };
}

export function refText(ref: AttachmentRef): string {
  return ref.namespace === undefined ? ref.name : `${ref.namespace}/${ref.name}`;
}

/** Same NetworkAttachmentDefinition: a missing namespace is the pod's. */
function same(a: AttachmentRef, b: AttachmentRef, podNamespace: string): boolean {
  return a.name === b.name && (a.namespace ?? podNamespace) === (b.namespace ?? podNamespace);
}

/** The annotation's new value, or undefined when it already lists the reference. */
export function withNetworkAttachment(existing: string | undefined, ref: AttachmentRef, podNamespace: string, subject: string): string | undefined {
  const text = existing?.trim() ?? '';
  if (text === '') return refText(ref);
  if (text.startsWith('[')) {
    let entries: unknown;
    try {
      entries = JSON.parse(text);
    } catch {
      entries = undefined;
    }
    if (!Array.isArray(entries) || !entries.every((e) => isObject(e) && typeof e.name === 'string')) {
      throw new ConfigError(`annotation ${NETWORKS_ANNOTATION}`, text, 'is neither a JSON array of {"name": ...} objects nor a comma-separated list', 'fix the annotation (Multus reads it)', `on ${subject}`);
    }
    const listed = entries.map((e) => ({ name: String(e.name), namespace: typeof e.namespace === 'string' && e.namespace !== '' ? e.namespace : undefined }));
    if (listed.some((e) => same(e, ref, podNamespace))) return undefined;
    const added = JSON.stringify(ref.namespace === undefined ? { name: ref.name } : { name: ref.name, namespace: ref.namespace });
    const close = text.lastIndexOf(']');
    return entries.length === 0 ? `[${added}]` : `${text.slice(0, close).trimEnd()}, ${added}${text.slice(close)}`;
  }
  const listed = text.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  const refs = listed.map((entry) => {
    const bare = entry.split('@')[0]!;
    const slash = bare.indexOf('/');
    return slash === -1 ? { namespace: undefined, name: bare } : { namespace: bare.slice(0, slash), name: bare.slice(slash + 1) };
  });
  if (refs.some((r) => same(r, ref, podNamespace))) return undefined;
  return `${text.replace(/,\s*$/, '')},${refText(ref)}`;
}
