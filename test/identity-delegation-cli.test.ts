/**
 * @module Keystone's delegation and catalog extensions through Debian's real `openstack` CLI on one
 * site: credentials and EC2 credentials, implied roles (and the implied role in a token), trusts and
 * a trust-scoped token (`--os-trust-id`), endpoint groups.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

describe('credentials, trusts, implied roles, endpoint groups through the openstack CLI', () => {
  let cloud: LocalCloud;
  before(async () => {
    cloud = await startLocalCloud({ sites: 1 });
  });
  after(async () => cloud?.close());

  const ok = async (args: string[], env?: Record<string, string>) => {
    const r = await cloud.os(args, env ? { env } : {});
    assert.equal(r.code, 0, `openstack ${args.join(' ')}: ${r.stderr}`);
    return r;
  };

  /** The roles of a token, as GET /v3/auth/tokens shows them (the CLI's `token issue` does not). */
  const tokenBody = async (token: string) => {
    const res = await fetch(`${cloud.url(0)}/identity/v3/auth/tokens`, {
      headers: { 'x-auth-token': token, 'x-subject-token': token },
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { token: { roles: { name: string }[]; 'OS-TRUST:trust'?: { id: string } } })
      .token;
  };

  it('credential create/list/show/set/delete and ec2 credentials create/list/show/delete', async () => {
    const c = await cloud.osJson(['credential', 'create', '--type', 'totp', 'admin', 'first-blob']);
    assert.deepEqual([c.type, c.blob], ['totp', 'first-blob']);
    const admin = await cloud.osJson(['user', 'show', 'admin']);
    assert.equal(c.user_id, admin.id);
    const listed = await cloud.osJson<{ ID: string; Type: string; Data: string }[]>(['credential', 'list']);
    assert.deepEqual(
      listed.map((x) => [x.ID, x.Type, x.Data]),
      [[c.id, 'totp', 'first-blob']],
    );
    await ok(['credential', 'set', '--type', 'cert', '--data', 'second-blob', '--user', 'admin', c.id]);
    const shown = await cloud.osJson(['credential', 'show', c.id]);
    assert.deepEqual([shown.type, shown.blob], ['cert', 'second-blob']);
    await ok(['credential', 'delete', c.id]);
    assert.deepEqual(await cloud.osJson(['credential', 'list']), []);
    assert.notEqual((await cloud.os(['credential', 'show', c.id])).code, 0);

    const ec2 = await cloud.osJson(['ec2', 'credentials', 'create']);
    assert.match(ec2.access, /^[0-9a-f]{32}$/);
    assert.ok(ec2.secret);
    assert.equal(ec2.project_id, (await cloud.osJson(['project', 'show', 'admin'])).id);
    const ec2s = await cloud.osJson<{ Access: string; Secret: string }[]>(['ec2', 'credentials', 'list']);
    assert.deepEqual(
      ec2s.map((x) => [x.Access, x.Secret]),
      [[ec2.access, ec2.secret]],
    );
    assert.equal((await cloud.osJson(['ec2', 'credentials', 'show', ec2.access])).secret, ec2.secret);
    await ok(['ec2', 'credentials', 'delete', ec2.access]);
    assert.deepEqual(await cloud.osJson(['ec2', 'credentials', 'list']), []);
  });

  it('implied role create/list/delete, with the implied role in a token', async () => {
    await ok(['role', 'create', 'observer']);
    const rule = await cloud.osJson(['implied', 'role', 'create', '--implied-role', 'observer', 'admin']);
    const observer = await cloud.osJson(['role', 'show', 'observer']);
    assert.equal(rule.implies, observer.id);
    const rules = await cloud.osJson<Record<string, string>[]>(['implied', 'role', 'list']);
    assert.deepEqual(
      rules.map((r) => [r['Prior Role Name'], r['Implied Role Name']]),
      [['admin', 'observer']],
    );
    const t = await cloud.osJson(['token', 'issue']);
    const names = (await tokenBody(t.id)).roles.map((r) => r.name).sort();
    assert.deepEqual(names, ['admin', 'member', 'observer', 'reader']);
    // No rule may imply admin (Keystone's prohibited_implied_role).
    const prohibited = await cloud.os(['implied', 'role', 'create', '--implied-role', 'admin', 'observer']);
    assert.notEqual(prohibited.code, 0);
    assert.match(prohibited.stderr, /HTTP 403/);
    await ok(['implied', 'role', 'delete', '--implied-role', 'observer', 'admin']);
    assert.deepEqual(await cloud.osJson(['implied', 'role', 'list']), []);
    const t2 = await cloud.osJson(['token', 'issue']);
    assert.ok(!(await tokenBody(t2.id)).roles.some((r) => r.name === 'observer'));
    await ok(['role', 'delete', 'observer']);
  });

  it('trust create/list/show/delete and a trust-scoped token (--os-trust-id)', async () => {
    await ok(['user', 'create', '--password', 'carol-pw', 'carol']);
    const carol = await cloud.osJson(['user', 'show', 'carol']);
    const admin = await cloud.osJson(['user', 'show', 'admin']);
    const project = await cloud.osJson(['project', 'show', 'admin']);
    // The admin holds member through bootstrap's admin -> member -> reader, so it may delegate it.
    const tr = await cloud.osJson([
      'trust',
      'create',
      '--project',
      'admin',
      '--role',
      'member',
      '--impersonate',
      'admin',
      'carol',
    ]);
    assert.deepEqual(
      [tr.trustor_user_id, tr.trustee_user_id, tr.project_id, tr.impersonation, tr.roles],
      [admin.id, carol.id, project.id, true, 'member'],
    );
    const listed = await cloud.osJson<{ ID: string; 'Trustee User ID': string }[]>(['trust', 'list']);
    assert.deepEqual(
      listed.map((x) => [x.ID, x['Trustee User ID']]),
      [[tr.id, carol.id]],
    );
    assert.equal((await cloud.osJson(['trust', 'show', tr.id])).roles, 'member');

    // carol logs in with the trust: no project in her environment, the trust is the scope.
    const e = cloud.env(0, { username: 'carol', password: 'carol-pw' });
    delete e.OS_PROJECT_NAME;
    delete e.OS_PROJECT_DOMAIN_NAME;
    const t = await cloud.osJson(['--os-trust-id', tr.id, 'token', 'issue'], { env: e });
    assert.equal(t.project_id, project.id);
    assert.equal(t.user_id, admin.id, 'an impersonating trust acts as the trustor');
    const body = await tokenBody(t.id);
    assert.equal(body['OS-TRUST:trust']?.id, tr.id);
    assert.deepEqual(body.roles.map((r) => r.name).sort(), ['member', 'reader']);
    const projects = await cloud.osJson<{ Name: string }[]>(['--os-trust-id', tr.id, 'project', 'list'], {
      env: e,
    });
    assert.ok(projects.some((p) => p.Name === 'admin'));
    // A trust never widens: carol cannot delegate the admin role she does not hold.
    const wider = await cloud.os(
      ['trust', 'create', '--project', 'admin', '--role', 'admin', 'carol', 'admin'],
      {
        env: { ...e, OS_PROJECT_NAME: 'admin', OS_PROJECT_DOMAIN_NAME: 'Default' },
      },
    );
    assert.notEqual(wider.code, 0);

    await ok(['trust', 'delete', tr.id]);
    assert.deepEqual(await cloud.osJson(['trust', 'list']), []);
    const after = await cloud.os(['--os-trust-id', tr.id, 'token', 'issue'], { env: e });
    assert.notEqual(after.code, 0);
    assert.match(after.stderr, /HTTP 401/);
    await ok(['user', 'delete', 'carol']);
  });

  it('endpoint group create/list/show/set/delete', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'atoll-eg-'));
    try {
      const filters = join(dir, 'filters.json');
      writeFileSync(filters, JSON.stringify({ interface: 'public', service_id: 'nope' }));
      const g = await cloud.osJson([
        'endpoint',
        'group',
        'create',
        '--description',
        'public ones',
        'pub',
        filters,
      ]);
      assert.deepEqual(
        [g.name, g.description, g.filters],
        ['pub', 'public ones', { interface: 'public', service_id: 'nope' }],
      );
      const listed = await cloud.osJson<{ ID: string; Name: string }[]>(['endpoint', 'group', 'list']);
      assert.deepEqual(
        listed.map((x) => [x.ID, x.Name]),
        [[g.id, 'pub']],
      );
      writeFileSync(filters, JSON.stringify({ interface: 'public' }));
      await ok([
        'endpoint',
        'group',
        'set',
        '--name',
        'public',
        '--description',
        'all public',
        '--filters',
        filters,
        'pub',
      ]);
      const shown = await cloud.osJson(['endpoint', 'group', 'show', 'public']);
      assert.deepEqual(
        [shown.id, shown.description, shown.filters],
        [g.id, 'all public', { interface: 'public' }],
      );
      // Atoll does not associate endpoint groups with projects (docs/identity.md).
      const add = await cloud.os(['endpoint', 'group', 'add', 'project', 'public', 'admin']);
      assert.notEqual(add.code, 0);
      assert.match(add.stderr, /HTTP 404/);
      await ok(['endpoint', 'group', 'delete', 'public']);
      assert.deepEqual(await cloud.osJson(['endpoint', 'group', 'list']), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
