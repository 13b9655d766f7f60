/**
 * @module End to end over real processes: three `atoll site` processes, each with its own nats-server,
 * the servers clustered through WAN proxies; driven by Debian's `openstack` CLI against different
 * sites' endpoints. Also: a site killed with SIGKILL during a stream of writes restarts, keeps every
 * write it acknowledged and catches up; an isolated site keeps authenticating.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { connect } from 'nats';
import { startProcessFederation } from './support/processes.ts';
import type { ProcFederation } from './support/processes.ts';
import { eventually } from './support/cloud.ts';

describe('federation of processes over real NATS', () => {
  let fed: ProcFederation;
  before(async () => {
    fed = await startProcessFederation(3);
    await fed.converged();
  });
  after(async () => fed?.stop());

  it('a token issued by site-a is accepted at site-c', async () => {
    const t = await fed.osJson<{ id: string }>(['token', 'issue'], 0);
    const env = { ...fed.env(2), OS_AUTH_TYPE: 'token', OS_TOKEN: t.id };
    delete (env as Record<string, string>).OS_USERNAME;
    delete (env as Record<string, string>).OS_PASSWORD;
    delete (env as Record<string, string>).OS_USER_DOMAIN_NAME;
    const projects = await fed.osJson<{ Name: string }[]>(['project', 'list'], 2, env);
    assert.ok(projects.some((p) => p.Name === 'admin'));
  });

  it('a user created through site-b (forwarded to the home site-a) logs in at every site', async () => {
    const u = await fed.osJson<{ id: string; name: string }>(
      ['user', 'create', '--domain', 'default', '--password', 'roamer-pw', 'roamer'],
      1,
    );
    const add = await fed.os(['role', 'add', '--user', 'roamer', '--project', 'admin', 'member'], 2);
    assert.equal(add.code, 0, add.stderr);
    const ids = await fed.loginEverywhere(
      { username: 'roamer', password: 'roamer-pw', project: 'admin' },
      10_000,
    );
    assert.deepEqual(ids, [u.id, u.id, u.id]);
  });

  it('an image uploaded at site-a boots a server on site-c; a server on site-b is deleted through site-a', async () => {
    const file = join(fed.dir, 'disk.img');
    writeFileSync(file, Buffer.alloc(256 * 1024, 7));
    const image = await fed.osJson<{ id: string }>(
      ['image', 'create', '--file', file, '--disk-format', 'raw', '--public', 'cirros-e2e'],
      0,
    );
    await fed.osJson(['flavor', 'create', '--ram', '256', '--disk', '1', '--vcpus', '1', 'e2e.tiny'], 0);
    // Both replicate to site-c; then boot there (its own endpoint) from site-a's image.
    await eventually(
      async () => (await fed.os(['flavor', 'show', 'e2e.tiny'], 2)).code === 0,
      10_000,
      'flavor at site-c',
    );
    await eventually(
      async () => (await fed.os(['image', 'show', image.id], 2)).code === 0,
      10_000,
      'image at site-c',
    );
    const onC = await fed.osJson<{ id: string; status: string }>(
      [
        'server',
        'create',
        '--flavor',
        'e2e.tiny',
        '--image',
        image.id,
        '--availability-zone',
        'site-c',
        '--wait',
        'vm-on-c',
      ],
      2,
    );
    assert.equal(onC.status, 'ACTIVE');
    // A server on site-b, created through site-a's endpoint (forwarded), then deleted through site-a.
    const onB = await fed.osJson<{ id: string; 'OS-EXT-AZ:availability_zone': string }>(
      [
        'server',
        'create',
        '--flavor',
        'e2e.tiny',
        '--image',
        image.id,
        '--availability-zone',
        'site-b',
        '--wait',
        'vm-on-b',
      ],
      0,
    );
    assert.equal(onB['OS-EXT-AZ:availability_zone'], 'site-b');
    for (const i of [0, 1, 2]) {
      await eventually(
        async () => {
          const list = await fed.osJson<{ ID: string }[]>(['server', 'list'], i);
          return list.some((x) => x.ID === onB.id) && list.some((x) => x.ID === onC.id);
        },
        10_000,
        `both servers listed at ${fed.sites[i]!.name}`,
      );
    }
    const del = await fed.os(['server', 'delete', '--wait', onB.id], 0);
    assert.equal(del.code, 0, del.stderr);
    for (const i of [0, 1, 2])
      await eventually(
        async () => !(await fed.osJson<{ ID: string }[]>(['server', 'list'], i)).some((x) => x.ID === onB.id),
        10_000,
        `vm-on-b gone at ${fed.sites[i]!.name}`,
      );
  });

  it('a change batch forged as site-a, or a real one altered, published straight into NATS is rejected and logged at every site', async () => {
    const nc = await connect({ servers: `nats://127.0.0.1:${fed.sites[1]!.natsPort}` });
    try {
      const metric = async (i: number) => {
        const text = await (await fetch(`${fed.sites[i]!.url}/metrics`)).text();
        return Number(/^atoll_change_batches_rejected_total (\d+)/m.exec(text)?.[1] ?? NaN);
      };
      const before = await Promise.all([1, 2].map(metric));
      // A real batch of site-a, captured on the wire...
      let captured: { v: number; origin: string; body: string; sig: string } | undefined;
      const sub = nc.subscribe('atoll.site-a.changes', {
        max: 1,
        callback: (_e, m) => (captured = JSON.parse(new TextDecoder().decode(m.data))),
      });
      await nc.flush();
      const made = await fed.os(['project', 'create', '--domain', 'default', 'wire-tap'], 0);
      assert.equal(made.code, 0, made.stderr);
      await eventually(() => captured, 10_000, 'a batch of site-a on the wire');
      sub.unsubscribe();
      // ...altered (a project renamed) and replayed with its original signature; and one forged outright.
      const changes = JSON.parse(captured!.body) as { kind: string; row: Record<string, unknown> | null }[];
      const altered = changes.map((c) =>
        c.kind === 'project' && c.row ? { ...c, row: { ...c.row, name: 'hijacked' } } : c,
      );
      nc.publish(
        'atoll.site-a.changes',
        new TextEncoder().encode(JSON.stringify({ ...captured!, body: JSON.stringify(altered) })),
      );
      const forged = [
        {
          seq: 999_999,
          kind: 'project',
          id: 'forged-project',
          op: 'put',
          row: { id: 'forged-project', owner: 'site-a', name: 'forged', domain_id: 'default' },
          at: 1,
        },
      ];
      nc.publish(
        'atoll.site-a.changes',
        new TextEncoder().encode(
          JSON.stringify({ v: 1, origin: 'site-a', body: JSON.stringify(forged), sig: captured!.sig }),
        ),
      );
      await nc.flush();
      for (const [k, i] of [1, 2].entries())
        await eventually(
          async () => (await metric(i)) >= before[k]! + 2,
          10_000,
          `${fed.sites[i]!.name} to reject both`,
        );
      for (const i of [1, 2]) {
        const list = await fed.osJson<{ Name: string }[]>(['project', 'list'], i);
        assert.ok(
          !list.some((p) => p.Name === 'hijacked' || p.Name === 'forged'),
          `nothing applied at ${fed.sites[i]!.name}`,
        );
        assert.ok(
          list.some((p) => p.Name === 'wire-tap'),
          'the genuine change is there',
        );
        assert.match(fed.sites[i]!.output, /rejected change batch/, 'and the rejection is logged');
      }
    } finally {
      await nc.close();
    }
  });

  it('an isolated site keeps issuing and accepting tokens; writes to what it does not own fail fast with 503', async () => {
    fed.isolate(2);
    try {
      let last = '';
      await eventually(
        async () => {
          const tok = await fed.token(2);
          const r = await fetch(`${fed.sites[2]!.url}/atoll/v1/sites`, { headers: { 'x-auth-token': tok } });
          last = await r.text();
          const body = JSON.parse(last) as { sites: { name: string; state: string }[] };
          return body.sites.find((s) => s.name === 'site-a')?.state === 'unreachable';
        },
        10_000,
        'site-c to see site-a unreachable',
      ).catch((e: Error) => {
        throw new Error(
          `${e.message}; last answer: ${last}; site-c output: ${fed.sites[2]!.output.slice(-2000)}`,
        );
      });
      const t = await fed.osJson<{ id: string }>(['token', 'issue'], 2);
      assert.ok(t.id);
      const started = Date.now();
      const r = await fed.os(['project', 'create', '--domain', 'default', 'while-cut-off'], 2);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /503|site-a/);
      assert.ok(Date.now() - started < 15_000, 'the failure was fast');
    } finally {
      fed.heal();
    }
    await fed.converged(30_000);
  });

  it('a site killed with SIGKILL during a stream of writes keeps every acknowledged write and catches up', async () => {
    const tok = await fed.token(0);
    const acked: string[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop && i < 2000; i++) {
        try {
          const r = await fetch(`${fed.sites[0]!.url}/identity/v3/projects`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-auth-token': tok },
            body: JSON.stringify({ project: { name: `crash-${i}`, domain_id: 'default' } }),
          });
          if (r.status === 201) acked.push(((await r.json()) as { project: { id: string } }).project.id);
        } catch {
          return; // the site is gone
        }
      }
    })();
    await eventually(() => acked.length >= 20, 20_000, 'some acknowledged writes');
    await fed.kill(0);
    stop = true;
    await writer;
    await fed.restart(0);
    const tok2 = await fed.token(0);
    for (const i of [0, 1, 2]) {
      await eventually(
        async () => {
          const r = await fetch(`${fed.sites[i]!.url}/identity/v3/projects?domain_id=default`, {
            headers: { 'x-auth-token': tok2 },
          });
          const ids = new Set(((await r.json()) as { projects: { id: string }[] }).projects.map((p) => p.id));
          return acked.every((id) => ids.has(id));
        },
        20_000,
        `all ${acked.length} acknowledged projects at ${fed.sites[i]!.name}`,
      );
    }
    await fed.converged();
  });
});

describe('joining and leaving', () => {
  let fed: ProcFederation;
  before(async () => {
    fed = await startProcessFederation(2);
    await fed.converged();
  });
  after(async () => fed?.stop());

  it('a site joins through a member (leaf node), catches up, serves logins, then leaves cleanly', async () => {
    const d = await fed.join('site-d', 1);
    await fed.converged();
    const t = await fed.osJson<{ id: string }>(['token', 'issue'], 2);
    assert.ok(t.id, 'admin (created at site-a) logs in at the new site');
    const regions = await fed.osJson<{ Region: string }[]>(['region', 'list'], 0);
    assert.ok(
      regions.some((r) => r.Region === 'site-d'),
      'the new site is a region everywhere',
    );

    const exited = new Promise((r) => d.proc!.once('exit', r));
    const left = await runAtoll(['site', 'leave'], fed.env(2));
    assert.equal(left.code, 0, left.stderr);
    await exited;
    const tok = await fed.token(0);
    const r = await fetch(`${fed.sites[0]!.url}/atoll/v1/sites`, { headers: { 'x-auth-token': tok } });
    const body = (await r.json()) as { sites: { name: string; registered_state: string }[] };
    assert.equal(body.sites.find((s) => s.name === 'site-d')?.registered_state, 'left');
    const after = await fed.osJson<{ Region: string }[]>(['region', 'list'], 0);
    assert.ok(!after.some((x) => x.Region === 'site-d'), 'its region is gone from the catalog');
  });

  it('a site that owns resources is refused when it tries to leave', async () => {
    const r = await runAtoll(['site', 'leave'], fed.env(0));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /409.*still owns/);
  });
});

function runAtoll(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      join(import.meta.dirname, '..', 'bin', 'atoll'),
      args,
      { env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('keys and eviction over real NATS', () => {
  let fed: ProcFederation;
  before(async () => {
    fed = await startProcessFederation(3);
    await fed.converged();
  });
  after(async () => fed?.stop());

  const validAt = async (i: number, token: string) =>
    (
      await fetch(`${fed.sites[i]!.url}/identity/v3/auth/tokens?nocatalog`, {
        headers: { 'x-auth-token': token, 'x-subject-token': token },
      })
    ).status;

  it('atoll site rotate-key: new tokens use the new key, old ones stay valid at every site', async () => {
    const old = await fed.token(1);
    const r = await runAtoll(['site', 'rotate-key'], fed.env(1));
    assert.equal(r.code, 0, r.stderr);
    const newer = await fed.token(1);
    const kid = (t: string) =>
      (JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
    assert.notEqual(kid(newer), kid(old));
    for (const i of [0, 1, 2]) {
      await eventually(
        async () => (await validAt(i, newer)) === 200,
        10_000,
        `new key at ${fed.sites[i]!.name}`,
      );
      assert.equal(await validAt(i, old), 200, `old token at ${fed.sites[i]!.name}`);
    }
  });

  it('atoll site evict: the evicted site’s tokens are rejected at every other site', async () => {
    const fromC = await fed.token(2);
    for (const i of [0, 1]) assert.equal(await validAt(i, fromC), 200);
    // Something site-c owns, made before it is evicted, and seen at site-a.
    const net = await api(2, 'POST', '/network/v2.0/networks', { network: { name: 'owned-by-c' } });
    assert.equal(net.status, 201);
    const netId = (net.body as { network: { id: string } }).network.id;
    await eventually(
      async () => (await api(0, 'GET', `/network/v2.0/networks/${netId}`)).status === 200,
      10_000,
    );
    // Evicted from site-b: the eviction runs at the membership authority (site-a, the founder).
    const r = await runAtoll(['site', 'evict', 'site-c', '--reason', 'test'], fed.env(1));
    assert.equal(r.code, 0, r.stderr);
    for (const i of [0, 1])
      await eventually(
        async () => (await validAt(i, fromC)) === 401,
        10_000,
        `site-c token refused at ${fed.sites[i]!.name}`,
      );
    const tok = await fed.token(1);
    const list = await fetch(`${fed.sites[1]!.url}/atoll/v1/sites`, { headers: { 'x-auth-token': tok } });
    const body = (await list.json()) as {
      sites: { name: string; registered_state: string; state: string }[];
    };
    assert.equal(body.sites.find((s) => s.name === 'site-c')?.registered_state, 'evicted');
    assert.equal(body.sites.find((s) => s.name === 'site-c')?.state, 'evicted');
  });

  it('after an eviction nothing is sent to the evicted site: AZ, catalog, forwarded writes, atoll sites', async () => {
    // Its AZ is gone, and a create there is refused rather than forwarded.
    const zones = await api(0, 'GET', '/compute/v2.1/os-availability-zone');
    const names = (zones.body as { availabilityZoneInfo: { zoneName: string }[] }).availabilityZoneInfo.map(
      (z) => z.zoneName,
    );
    assert.deepEqual(names.sort(), ['site-a', 'site-b']);
    const create = await api(1, 'POST', '/compute/v2.1/servers', {
      server: { name: 'x', flavorRef: '1', imageRef: 'x', availability_zone: 'site-c' },
    });
    assert.equal(create.status, 400, JSON.stringify(create.body));
    // Its endpoints leave every token's catalog.
    const cat = await api(0, 'GET', '/identity/v3/auth/catalog');
    const regions = new Set(
      (cat.body as { catalog: { endpoints: { region_id: string }[] }[] }).catalog.flatMap((s) =>
        s.endpoints.map((e) => e.region_id),
      ),
    );
    assert.equal(regions.has('site-c'), false, [...regions].join(','));
    // What it owns is orphaned: a delete sent to another site is refused, and nothing is deleted.
    const nets = await api(0, 'GET', '/network/v2.0/networks?name=owned-by-c');
    const id = (nets.body as { networks: { id: string }[] }).networks[0]!.id;
    const del = await api(0, 'DELETE', `/network/v2.0/networks/${id}`);
    assert.equal(del.status, 409, JSON.stringify(del.body));
    assert.equal((await api(0, 'GET', `/network/v2.0/networks/${id}`)).status, 200);
    // atoll sites says so.
    const out = await runAtoll(['sites'], fed.env(0));
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^site-c\s+evicted\b/m);
  });

  /** One call of a site's API as the admin, JSON in and out. */
  async function api(i: number, method: string, path: string, body?: unknown) {
    const r = await fetch(`${fed.sites[i]!.url}${path}`, {
      method,
      headers: {
        'x-auth-token': await fed.token(i),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  }
});
