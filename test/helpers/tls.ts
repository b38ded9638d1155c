/** Self-signed certificates made at test time with openssl, for HTTPS on 127.0.0.1. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';

export interface TestCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly fingerprint: string;
}

export function makeCert(dir = mkdtempSync(join(tmpdir(), 'meshcap-tls-')), name = 'tls'): TestCert {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=meshcap-webhook.test',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' });
  const cert = readFileSync(certFile, 'utf8');
  return { certFile, keyFile, cert, fingerprint: new X509Certificate(cert).fingerprint256 };
}
