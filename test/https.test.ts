/**
 * @module The public APIs over HTTPS with a given certificate and key: the openstack CLI talks to the
 * site with the CA it trusts, and refuses it without.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../src/core/ports.ts';
import { MemoryNetwork } from '../src/fabric/memory/network.ts';
import { startSite } from '../src/site/launch.ts';
import type { Site } from '../src/site/site.ts';
import { ADMIN, runOpenstack } from './support/cloud.ts';

describe('HTTPS APIs', () => {
  let dir: string;
  let site: Site;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'atoll-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    site = await startSite(
      {
        name: 'site-a',
        logLevel: 'silent',
        passwordHashCost: 10,
        tlsCertFile: join(dir, 'cert.pem'),
        tlsKeyFile: join(dir, 'key.pem'),
      },
      new MemoryNetwork(systemClock).connect('site-a'),
      { bootstrap: ADMIN },
    );
  });
  after(async () => {
    await site?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string>) => ({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    OS_AUTH_URL: `${site.ctx.publicUrl()}/identity/v3`,
    OS_IDENTITY_API_VERSION: '3',
    OS_USERNAME: 'admin',
    OS_PASSWORD: ADMIN.adminPassword,
    OS_PROJECT_NAME: 'admin',
    OS_USER_DOMAIN_NAME: 'Default',
    OS_PROJECT_DOMAIN_NAME: 'Default',
    OS_REGION_NAME: 'site-a',
    ...extra,
  });

  it('serves https and the CLI works with the CA', async () => {
    assert.match(site.ctx.publicUrl(), /^https:\/\//);
    const r = await runOpenstack(['token', 'issue', '-f', 'json'], env({ OS_CACERT: join(dir, 'cert.pem') }));
    assert.equal(r.code, 0, r.stderr);
    const catalog = await runOpenstack(
      ['endpoint', 'list', '-f', 'json'],
      env({ OS_CACERT: join(dir, 'cert.pem') }),
    );
    assert.match(catalog.stdout, /https:\/\/127\.0\.0\.1/);
  });

  it('the CLI refuses the site without the CA', async () => {
    const r = await runOpenstack(['token', 'issue'], env({}));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /SSL|certificate/i);
  });
});
