/**
 * @module Issue 11, class 3: no single change may ever be unsendable. A row too large to replicate is
 * refused at the API (413, nothing written); what a site sends is split by bytes under the fabric's
 * max payload, so a burst of large rows and a late site's pull both get through a real nats-server
 * with its default max_payload (1 MiB), and a revocation after them takes effect everywhere; a change
 * an older version logged too large for any message is skipped visibly instead of wedging its origin.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/ports.ts';
import { MemoryNetwork } from '../src/fabric/memory/network.ts';
import { NatsFabric } from '../src/fabric/nats/nats-fabric.ts';
import { DEFAULT_MAX_PAYLOAD } from '../src/fabric/fabric.ts';
import { MAX_CHANGE_BYTES } from '../src/federation/limits.ts';
import { startSite } from '../src/site/launch.ts';
import type { Site } from '../src/site/site.ts';
import { ADMIN, eventually, passwordToken, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { startNatsCluster } from './support/nats.ts';
import type { NatsCluster } from './support/nats.ts';
import { miniSite, runFor } from './support/mini-site.ts';

/** About 300 KB of `"`: escaped at every step, over 2 MiB in a change batch on today's main. */
const QUOTE_BOMB = '"'.repeat(300_000);

async function call(
  base: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token ? { 'x-auth-token': token } : {}),
      ...(body !== undefined ? { 'content-type': contentType } : {}),
      'x-openstack-nova-api-version': '2.37',
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

describe('issue 11 class 3: oversized rows at the API (413, nothing written)', () => {
  let cloud: LocalCloud;
  let token: string;
  let site: Site;
  const url = () => cloud.url(0);
  const http = (method: string, path: string, body?: unknown, ct?: string) =>
    call(url(), token, method, path, body, ct);

  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
    site = cloud.fed.sites[0]!;
    token = await cloud.adminToken(0);
  });
  after(async () => cloud?.close());

  /**
   * Runs `write`, which must answer a 413 fault (or `also`: an API's own limit that refuses it first,
   * such as Nova's 255 characters per metadata value), and checks that the change log did not move.
   */
  async function refused(write: () => Promise<{ status: number; json: any }>, also: number[] = []) {
    const head = site.ctx.changelog.head();
    const r = await write();
    assert.ok([413, ...also].includes(r.status), `${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
    if (r.status === 413) assert.match(JSON.stringify(r.json), /too large/);
    assert.equal(site.ctx.changelog.head(), head, 'nothing was logged');
  }

  it('an image PATCH with ~300 KB of " in a property gets 413, the image is unchanged', async () => {
    const img = await http('POST', '/image/v2/images', {
      name: 'small',
      disk_format: 'raw',
      container_format: 'bare',
    });
    assert.equal(img.status, 201);
    const was = await http('GET', `/image/v2/images/${img.json.id}`);
    await refused(() =>
      http(
        'PATCH',
        `/image/v2/images/${img.json.id}`,
        [{ op: 'add', path: '/quote_bomb', value: QUOTE_BOMB }],
        'application/openstack-images-v2.1-json-patch',
      ),
    );
    const now = await http('GET', `/image/v2/images/${img.json.id}`);
    assert.deepEqual(now.json, was.json);
    assert.equal(now.json.quote_bomb, undefined);
  });

  it('an image create with such a property gets 413 and no image exists', async () => {
    await refused(() => http('POST', '/image/v2/images', { name: 'bomb', quote_bomb: QUOTE_BOMB }));
    const list = await http('GET', '/image/v2/images?name=bomb');
    assert.deepEqual(list.json.images, []);
  });

  it('a write at another site too large to forward to the owner gets 413, not 503', async () => {
    const img = await http('POST', '/image/v2/images', {
      name: 'far',
      disk_format: 'raw',
      container_format: 'bare',
    });
    await cloud.converged();
    const other = cloud.fed.sites[1]!;
    const forwarded = other.ctx.forwarder.stats.forwarded;
    const r = await call(
      cloud.url(1),
      await cloud.adminToken(1),
      'PATCH',
      `/image/v2/images/${img.json.id}`,
      [{ op: 'add', path: '/big', value: 'a'.repeat(900_000) }],
      'application/openstack-images-v2.1-json-patch',
    );
    assert.equal(r.status, 413, JSON.stringify(r.json).slice(0, 300));
    assert.match(r.json.error.message, /too large to forward to site-a/);
    assert.equal(other.ctx.forwarder.stats.forwarded, forwarded, 'nothing was sent');
  });

  it('server metadata and volume metadata that big are refused (413, or 400 by the API limits) and unchanged', async () => {
    const flavor = await http('POST', '/compute/v2.1/flavors', {
      flavor: { name: 'payload.tiny', ram: 128, vcpus: 1, disk: 1 },
    });
    const image = await http('POST', '/image/v2/images', {
      name: 'boot',
      disk_format: 'raw',
      container_format: 'bare',
    });
    await fetch(`${url()}/image/v2/images/${image.json.id}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(1024),
    });
    const server = {
      name: 'quiet',
      flavorRef: flavor.json.flavor.id,
      imageRef: image.json.id,
      networks: 'none',
    };
    await refused(
      () =>
        http('POST', '/compute/v2.1/servers', {
          server: { ...server, name: 'bomb', metadata: { k: QUOTE_BOMB } },
        }),
      [400],
    );
    assert.deepEqual((await http('GET', '/compute/v2.1/servers?name=bomb')).json.servers, []);

    const s = await http('POST', '/compute/v2.1/servers', { server: { ...server, metadata: { k: 'v' } } });
    assert.equal(s.status, 202, JSON.stringify(s.json));
    const sid = s.json.server.id as string;
    await refused(
      () => http('POST', `/compute/v2.1/servers/${sid}/metadata`, { metadata: { big: QUOTE_BOMB } }),
      [400],
    );
    // Within Nova's limits (255 per value, 128 items) plus a 64 KB user_data, the row cap still holds.
    const heavy = Object.fromEntries(Array.from({ length: 120 }, (_x, i) => [`k${i}`, '"'.repeat(255)]));
    await refused(() =>
      http('POST', '/compute/v2.1/servers', {
        server: { ...server, name: 'bomb2', metadata: heavy, user_data: 'A'.repeat(65_535) },
      }),
    );
    assert.deepEqual((await http('GET', `/compute/v2.1/servers/${sid}/metadata`)).json.metadata, { k: 'v' });

    const project = site.ctx.tokens!.validate(token).projectId!;
    const vol = await http('POST', `/volume/v3/${project}/volumes`, {
      volume: { size: 1, metadata: { k: 'v' } },
    });
    assert.equal(vol.status, 202, JSON.stringify(vol.json));
    const vid = vol.json.volume.id as string;
    // Block Storage caps each value at 255 characters (400, as Cinder): the row cap is reached with many.
    const many = Object.fromEntries(Array.from({ length: 600 }, (_x, i) => [`k${i}`, '"'.repeat(255)]));
    await refused(() => http('POST', `/volume/v3/${project}/volumes/${vid}/metadata`, { metadata: many }));
    assert.deepEqual((await http('GET', `/volume/v3/${project}/volumes/${vid}/metadata`)).json.metadata, {
      k: 'v',
    });
  });
});

describe('issue 11 class 3: large rows and a revocation over real nats-servers (default max_payload)', () => {
  const T = { timeout: 120_000 };
  let cluster: NatsCluster;
  const sites: Site[] = [];

  const start = async (name: string, server: number, bootstrap: boolean) => {
    const fabric = await NatsFabric.connect(name, { servers: cluster.urls[server]!, closeGraceMs: 300 });
    const s = await startSite(
      {
        name,
        host: '127.0.0.1',
        port: 0,
        dataDir: ':memory:',
        logLevel: 'silent',
        passwordHashCost: 10,
        heartbeatMs: 200,
        downAfterMs: 1000,
      },
      fabric,
      bootstrap ? { bootstrap: ADMIN } : {},
    );
    sites.push(s);
    return s;
  };
  /** Whether `s` has applied `origin`'s whole log. */
  const caughtUp = (s: Site, origin: Site) =>
    s.ctx.changelog.cursor(origin.ctx.name) >= origin.ctx.changelog.head();

  before(async () => {
    cluster = await startNatsCluster(3);
  });
  after(async () => {
    await Promise.all(sites.map((s) => s.close()));
    await cluster?.stop();
  });

  it(
    'many rows just under the cap in one burst, then a revocation: every site sees all of it',
    T,
    async () => {
      const a = await start('site-a', 0, true);
      const b = await start('site-b', 1, false);
      assert.equal(a.ctx.fabric.maxPayload, DEFAULT_MAX_PAYLOAD, "the server's advertised max_payload");
      await eventually(() => caughtUp(b, a) && caughtUp(a, b), 20_000, 'site-b to catch up with site-a');
      const base = a.ctx.publicUrl();
      const admin = await passwordToken(base);
      const doomed = await passwordToken(base);
      assert.equal((await call(b.ctx.publicUrl(), doomed, 'GET', '/compute/v2.1/servers')).status, 200);

      // A change an older version logged, too large for any message: skipped, not a wedge.
      a.ctx.store.db
        .prepare("INSERT INTO changes (kind, id, op, row, at) VALUES ('image', 'old-huge', 'put', ?, 0)")
        .run(
          JSON.stringify({ id: 'old-huge', owner: 'site-a', name: 'old', properties: QUOTE_BOMB.repeat(4) }),
        );

      // Eight servers in one request (one transaction, so one push): each row holds 45 metadata values
      // of 255 `"` (stored as JSON in the row: four characters each) and 60,000 characters of user_data
      // (about 108 KB of row JSON: under the cap, within Nova's limits); pushed whole, about 1.7 MiB.
      const flavor = await call(base, admin, 'POST', '/compute/v2.1/flavors', {
        flavor: { name: 'burst.tiny', ram: 128, vcpus: 1, disk: 1 },
      });
      const image = await call(base, admin, 'POST', '/image/v2/images', {
        name: 'burst',
        disk_format: 'raw',
        container_format: 'bare',
      });
      await fetch(`${base}/image/v2/images/${image.json.id}/file`, {
        method: 'PUT',
        headers: { 'x-auth-token': admin, 'content-type': 'application/octet-stream' },
        body: new Uint8Array(1024),
      });
      const created = await call(base, admin, 'POST', '/compute/v2.1/servers', {
        server: {
          name: 'burst',
          flavorRef: flavor.json.flavor.id,
          imageRef: image.json.id,
          networks: 'none',
          min_count: 8,
          max_count: 8,
          metadata: Object.fromEntries(Array.from({ length: 45 }, (_x, i) => [`k${i}`, '"'.repeat(255)])),
          user_data: 'A'.repeat(60_000),
        },
      });
      assert.equal(created.status, 202, JSON.stringify(created.json).slice(0, 300));
      const rowBytes = (
        a.ctx.store.db.prepare("SELECT max(length(row)) AS n FROM changes WHERE kind = 'server'").get() as {
          n: number;
        }
      ).n;
      assert.ok(rowBytes > 100_000 && rowBytes < MAX_CHANGE_BYTES, `server rows of ${rowBytes} bytes`);

      const revoked = await fetch(`${base}/identity/v3/auth/tokens`, {
        method: 'DELETE',
        headers: { 'x-auth-token': admin, 'x-subject-token': doomed },
      });
      assert.equal(revoked.status, 204);

      const servers = (s: Site) =>
        (
          s.ctx.store.db.prepare("SELECT count(*) AS n FROM servers WHERE name LIKE 'burst-%'").get() as {
            n: number;
          }
        ).n;
      const everything = async (s: Site) =>
        servers(s) === 8 &&
        (await call(s.ctx.publicUrl(), doomed, 'GET', '/compute/v2.1/servers')).status === 401;
      await eventually(() => everything(b), 30_000, 'the servers and the revocation at site-b (pushes)');

      // A site that starts now gets all of it by pulling: each reply under max_payload too.
      const c = await start('site-c', 2, false);
      await eventually(() => everything(c), 30_000, 'the servers and the revocation at site-c (pulls)');
      await eventually(() => caughtUp(b, a) && caughtUp(c, a), 30_000, "site-a's whole log everywhere");
      assert.ok(a.ctx.replicator.stats.oversized >= 1, 'the old oversized change was skipped, and counted');
      assert.equal(b.ctx.store.db.prepare("SELECT 1 FROM images WHERE id = 'old-huge'").get(), undefined);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      assert.match(metrics, /atoll_changes_oversized_total [1-9]/);
    },
  );
});

describe('issue 11 class 3: splitting on the in-process fabric with max_payload enforced', () => {
  it('a burst of rows near the cap reaches the other site in several pushes', async () => {
    const clock = new VirtualClock();
    const net = new MemoryNetwork(clock, { maxPayload: DEFAULT_MAX_PAYLOAD });
    const [a, b] = await Promise.all(['a', 'b'].map((n) => miniSite(net, n, clock)));
    await runFor(clock, 300);
    const pushed = a!.rep.stats.pushedBatches;
    a!.store.tx(() => {
      for (let i = 0; i < 20; i++) a!.log.put('item', { id: `big${i}`, v: i, pad: '"'.repeat(60_000) });
    });
    assert.ok(a!.rep.stats.pushedBatches - pushed >= 5, 'about 240 KB each, at most four per message');
    await runFor(clock, 50);
    assert.equal(b!.rows().length, 20);
    assert.equal(b!.log.cursor('a'), a!.log.head());
    await Promise.all([a, b].map((s) => s!.stop()));
  });

  it('an oversized change already in the log is skipped by pushes and pulls, visibly', async () => {
    const clock = new VirtualClock();
    const net = new MemoryNetwork(clock, { maxPayload: DEFAULT_MAX_PAYLOAD });
    const a = await miniSite(net, 'a', clock);
    const b = await miniSite(net, 'b', clock);
    await runFor(clock, 300);
    a.store.db
      .prepare("INSERT INTO changes (kind, id, op, row, at) VALUES ('item', 'huge', 'put', ?, 0)")
      .run(JSON.stringify({ id: 'huge', owner: 'a', v: 0, pad: '"'.repeat(2 * DEFAULT_MAX_PAYLOAD) }));
    a.log.put('item', { id: 'after', v: 1 });
    await runFor(clock, 50);
    assert.deepEqual(
      b.rows().map((r) => r.id),
      ['after'],
    );
    assert.equal(b.rep.stats.rejected, 1, 'the stub is rejected at the receiver');
    assert.equal(a.rep.stats.oversized, 1);
    const c = await miniSite(net, 'c', clock); // pulls a's log from the start
    await runFor(clock, 500);
    assert.deepEqual(
      c.rows().map((r) => r.id),
      ['after'],
    );
    assert.equal(c.log.cursor('a'), a.log.head());
    assert.equal(a.rep.stats.oversized, 2);
    await Promise.all([a, b, c].map((s) => s.stop()));
  });
});
