// Throwaway certificate authorities for TLS tests, made with the `openssl`
// command in a temp dir that t.teardown removes: a CA, server certificates
// for IP addresses, client certificates whose CN names an identity (etcd
// takes a client certificate's CN as its user with --client-cert-auth).
// ECDSA P-256 keys, valid one day: quick to make, never worth stealing.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TapLike } from './netns';
import { tempDir } from './vxland';

/** Bound on one openssl run. */
const OPENSSL_TIMEOUT_MS = 10_000;
const VALID_DAYS = '1';

export interface KeyPair {
  /** PEM certificate file. */
  cert: string;
  /** PEM private key file (unencrypted). */
  key: string;
}

export interface TestCa {
  /** The CA's PEM certificate: what a peer trusts. */
  ca: string;
  /** A certificate for a server reachable at these IP addresses (SANs). */
  server(name: string, ips: readonly string[]): KeyPair;
  /** A client certificate with subject CN=cn. */
  client(cn: string): KeyPair;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: OPENSSL_TIMEOUT_MS });
}

/** A new CA named `name` in a temp dir of its own. */
export function makeTestCa(t: TapLike, name: string): TestCa {
  const dir = tempDir(t, `pki-${name}`);
  const file = (f: string) => path.join(dir, f);
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...newKey, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', VALID_DAYS,
    '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const issue = (base: string, cn: string, extensions: string): KeyPair => {
    const pair = { cert: file(`${base}.crt`), key: file(`${base}.key`) };
    openssl(['req', ...newKey, '-keyout', pair.key, '-out', file(`${base}.csr`), '-subj', `/CN=${cn}`]);
    writeFileSync(file(`${base}.ext`), extensions);
    openssl(['x509', '-req', '-in', file(`${base}.csr`), '-CA', file('ca.crt'), '-CAkey', file('ca.key'),
      '-CAcreateserial', '-out', pair.cert, '-days', VALID_DAYS, '-extfile', file(`${base}.ext`)]);
    return pair;
  };
  return {
    ca: file('ca.crt'),
    server: (base, ips) => issue(`server-${base}`, base,
      `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n`),
    client: (cn) => issue(`client-${cn}`, cn, 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n'),
  };
}
