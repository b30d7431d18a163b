import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const FIXTURE = 'test/http/fixtures/deliver-once.ts';
/** A self-signed certificate for 127.0.0.1 and its key, made for these tests only (valid for a century). */
const TLS = 'test/http/fixtures/tls';

/**
 * The sender over node:https against a server with a certificate of its own: delivered when the process trusts
 * that certificate (NODE_EXTRA_CA_CERTS, as production trusts a private CA), refused when it does not.
 */
describe('HTTP sender over https', () => {
  let server: https.Server;
  let url: string;
  const seen: string[] = [];

  beforeAll(async () => {
    server = https.createServer(
      { key: readFileSync(join(TLS, 'key.pem')), cert: readFileSync(join(TLS, 'cert.pem')) },
      (req, res) => {
        seen.push(String(req.headers['exactly-once-token']));
        req.resume();
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json', 'exactly-once-status': 'processed' });
          res.end('{"secure":true}');
        });
      },
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/signal`;
  });

  afterAll(() => {
    server?.closeAllConnections();
    server?.close();
  });

  async function deliverFromChild(tokenId: string, env: Record<string, string>) {
    const { NODE_EXTRA_CA_CERTS: _, ...inherited } = process.env;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', FIXTURE], {
      env: { ...inherited, TARGET_URL: url, TOKEN_ID: tokenId, ...env },
    });
    return JSON.parse(stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
  }

  it('delivers to a server whose certificate the process trusts', async () => {
    const result = await deliverFromChild('token-over-tls', { NODE_EXTRA_CA_CERTS: join(TLS, 'cert.pem') });
    expect(result).toEqual({ outcome: 'processed', statusCode: 200, attempts: 1, body: '{"secure":true}' });
    expect(seen).toContain('token-over-tls');
  });

  it('refuses a certificate the process does not trust: nothing reaches the server, the token stays to retry', async () => {
    const result = await deliverFromChild('token-untrusted', {});
    expect(result).toMatchObject({ dispatch: true, retriable: true, cause: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    expect(seen).not.toContain('token-untrusted');
  });
});
