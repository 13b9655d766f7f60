/**
 * @module Three `atoll site` processes whose nats-servers run the deployment configuration: a user per
 * site with least privilege, authenticated routes, and mutual TLS on every client connection and route
 * (routes through WAN proxies). The sites must still replicate, forward writes and log users in across
 * sites; the servers must show every link encrypted; site-a's credentials must not let it serve site-b.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NatsFabric } from '../src/fabric/nats/nats-fabric.ts';
import { subjects } from '../src/fabric/fabric.ts';
import { eventually } from './support/cloud.ts';
import { startProcessFederation } from './support/processes.ts';
import type { ProcFederation } from './support/processes.ts';

const T = { timeout: 120_000 };

interface Connz {
  connections: { name?: string; tls_version?: string; authorized_user?: string }[];
}
interface Varz {
  tls_required?: boolean;
  tls_verify?: boolean;
  cluster?: { tls_required?: boolean; tls_verify?: boolean };
}

describe('a federation of processes over mutually authenticated TLS links', () => {
  let fed: ProcFederation;
  before(async () => {
    fed = await startProcessFederation(3, { secure: { tls: true } });
    await fed.converged(30_000);
  }, T);
  after(() => fed?.stop(), T);

  it('every site is logged in as its own user over TLS, and routes require TLS both ways', T, async () => {
    for (let i = 0; i < 3; i++) {
      const mon = fed.monitorUrl(i);
      const varz = (await (await fetch(`${mon}/varz`)).json()) as Varz;
      assert.equal(varz.tls_required, true);
      assert.equal(varz.tls_verify, true);
      assert.equal(varz.cluster?.tls_required, true);
      assert.equal(varz.cluster?.tls_verify, true);
      const connz = (await (await fetch(`${mon}/connz?auth=1`)).json()) as Connz;
      const site = fed.sites[i]!.name;
      const mine = connz.connections.find((c) => c.name === `atoll-site-${site}`);
      assert.ok(mine, `${site} is connected to its server`);
      assert.equal(mine.authorized_user, site);
      assert.match(mine.tls_version ?? '', /^1\.[23]$/);
    }
  });

  it('a user created through site-b (forwarded to site-a) logs in at every site', T, async () => {
    const u = await fed.osJson<{ id: string }>(
      ['user', 'create', '--domain', 'default', '--password', 'tls-pw', 'tls-roamer'],
      1,
    );
    const add = await fed.os(['role', 'add', '--user', 'tls-roamer', '--project', 'admin', 'member'], 2);
    assert.equal(add.code, 0, add.stderr);
    const ids = await fed.loginEverywhere({ username: 'tls-roamer', password: 'tls-pw', project: 'admin' });
    assert.deepEqual(ids, [u.id, u.id, u.id]);
    await fed.converged(30_000);
  });

  it("site-a's credentials cannot answer for site-b", T, async () => {
    const a = fed.sites[0]!;
    const intruder = await NatsFabric.connect('site-a', {
      servers: `nats://127.0.0.1:${a.natsPort}`,
      name: 'intruder-with-site-a-credentials',
      user: a.nats!.user,
      pass: a.nats!.password,
      tls: { caFile: a.nats!.tls!.ca, certFile: a.nats!.tls!.cert, keyFile: a.nats!.tls!.key },
      closeGraceMs: 300,
    });
    try {
      let answered = 0;
      intruder.serve(subjects.rpc('site-b', 'http'), () => {
        answered++;
        return new Uint8Array();
      });
      await intruder.flush();
      await eventually(() => intruder.stats.denied >= 1, 5000, 'the server to refuse the subscription');
      // Writes forwarded to site-b still reach site-b itself.
      const r = await fed.os(
        ['volume', 'create', '--size', '1', '--availability-zone', 'site-b', 'tls-vol'],
        2,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(answered, 0);
    } finally {
      await intruder.close();
    }
  });
});
