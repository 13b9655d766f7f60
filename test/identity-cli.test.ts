/**
 * @module One site as a Keystone v3 for Debian's real `openstack` CLI: projects, users, groups, roles,
 * assignments, catalog, application credentials, token issue/revoke, and the failure cases (wrong
 * password, revoked token, forbidden action as a member). Credentials, trusts, implied roles and endpoint
 * groups are in identity-delegation-cli.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

/** An environment that authenticates the CLI with a token only (OS_AUTH_TYPE=token). */
function tokenEnv(cloud: LocalCloud, token: string): Record<string, string> {
  const e = cloud.env(0);
  return {
    PATH: e.PATH!,
    HOME: e.HOME!,
    OS_AUTH_URL: e.OS_AUTH_URL!,
    OS_IDENTITY_API_VERSION: '3',
    OS_AUTH_TYPE: 'token',
    OS_TOKEN: token,
    OS_REGION_NAME: e.OS_REGION_NAME!,
    OS_INTERFACE: 'public',
  };
}

describe('identity through the openstack CLI (one site)', () => {
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

  it('creates, lists, shows, sets and deletes projects, users, groups and roles', async () => {
    const p = await cloud.osJson([
      'project',
      'create',
      '--domain',
      'default',
      '--description',
      'demo',
      '--tag',
      't1',
      'demo',
    ]);
    assert.equal(p.name, 'demo');
    assert.equal(p.domain_id, 'default');
    assert.deepEqual(p.tags, ['t1']);
    const child = await cloud.osJson(['project', 'create', '--parent', 'demo', 'demo-child']);
    assert.equal(child.parent_id, p.id);

    const projects = await cloud.osJson<{ Name: string }[]>(['project', 'list']);
    assert.deepEqual(projects.map((x) => x.Name).sort(), ['admin', 'demo', 'demo-child', 'service']);
    assert.equal((await cloud.osJson(['project', 'show', 'demo'])).description, 'demo');
    await ok(['project', 'set', '--description', 'changed', 'demo']);
    assert.equal((await cloud.osJson(['project', 'show', p.id])).description, 'changed');

    const u = await cloud.osJson([
      'user',
      'create',
      '--domain',
      'default',
      '--password',
      'alice-pw',
      '--email',
      'a@example.org',
      '--project',
      'demo',
      'alice',
    ]);
    assert.equal(u.name, 'alice');
    assert.equal(u.default_project_id, p.id);
    assert.ok(!('password' in u) && !('password_hash' in u));
    const users = await cloud.osJson<{ Name: string }[]>(['user', 'list']);
    assert.deepEqual(users.map((x) => x.Name).sort(), ['admin', 'alice']);
    await ok(['user', 'set', '--email', 'alice@example.org', 'alice']);
    assert.equal((await cloud.osJson(['user', 'show', 'alice'])).email, 'alice@example.org');

    const g = await cloud.osJson(['group', 'create', '--description', 'ops team', 'ops']);
    assert.equal(g.name, 'ops');
    await ok(['group', 'add', 'user', 'ops', 'alice']);
    const inGroup = await cloud.os(['group', 'contains', 'user', 'ops', 'alice']);
    assert.equal(inGroup.code, 0);
    assert.match(inGroup.stdout, /alice in group ops/);
    const members = await cloud.osJson<{ Name: string }[]>(['user', 'list', '--group', 'ops']);
    assert.deepEqual(
      members.map((x) => x.Name),
      ['alice'],
    );

    const r = await cloud.osJson(['role', 'create', 'auditor']);
    assert.equal(r.name, 'auditor');
    const roles = await cloud.osJson<{ Name: string }[]>(['role', 'list']);
    assert.deepEqual(roles.map((x) => x.Name).sort(), ['admin', 'auditor', 'member', 'reader']);

    // Duplicates are a 409.
    const dup = await cloud.os(['project', 'create', 'demo']);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /409|Conflict/i);

    await ok(['group', 'remove', 'user', 'ops', 'alice']);
    await ok(['group', 'delete', 'ops']);
    await ok(['role', 'delete', 'auditor']);
    await ok(['project', 'delete', 'demo-child']);
    const gone = await cloud.os(['project', 'show', 'demo-child']);
    assert.notEqual(gone.code, 0);
  });

  it('adds and removes roles, and lists role assignments with names and filters', async () => {
    await ok(['role', 'add', '--project', 'demo', '--user', 'alice', 'member']);
    const named = await cloud.osJson<{ Role: string; User: string; Project: string }[]>([
      'role',
      'assignment',
      'list',
      '--names',
      '--user',
      'alice',
    ]);
    assert.deepEqual(named, [
      {
        Role: 'member',
        User: 'alice@Default',
        Group: '',
        Project: 'demo@Default',
        Domain: '',
        System: '',
        Inherited: false,
      },
    ]);
    const byProject = await cloud.osJson<{ Role: string; User: string }[]>([
      'role',
      'assignment',
      'list',
      '--project',
      'demo',
    ]);
    assert.equal(byProject.length, 1);
    const all = await cloud.osJson<unknown[]>(['role', 'assignment', 'list']);
    assert.ok(all.length >= 2);
    const userProjects = await cloud.osJson<{ Name: string }[]>(['project', 'list', '--user', 'alice']);
    assert.deepEqual(
      userProjects.map((x) => x.Name),
      ['demo'],
    );

    // alice can now log in on demo and see her own projects, but not list users (403).
    const alice = cloud.env(0, { username: 'alice', password: 'alice-pw', project: 'demo' });
    const t = await cloud.osJson(['token', 'issue'], { env: alice });
    assert.ok(t.id);
    const mine = await cloud.osJson<{ Name: string }[]>(['project', 'list', '--my-projects'], { env: alice });
    assert.deepEqual(
      mine.map((x) => x.Name),
      ['demo'],
    );
    assert.equal(
      (
        await cloud.osJson(['user', 'show', (await cloud.osJson(['user', 'show', 'alice'])).id], {
          env: alice,
        })
      ).name,
      'alice',
    );
    const denied = await cloud.os(['user', 'list'], { env: alice });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /403|not authorized/i);
    const denied2 = await cloud.os(['project', 'create', 'alices-own'], { env: alice });
    assert.notEqual(denied2.code, 0);
    assert.match(denied2.stderr, /403|not authorized/i);

    await ok(['role', 'remove', '--project', 'demo', '--user', 'alice', 'member']);
    const none = await cloud.osJson<unknown[]>(['role', 'assignment', 'list', '--user', 'alice']);
    assert.deepEqual(none, []);
    const cannot = await cloud.os(['token', 'issue'], { env: alice });
    assert.notEqual(cannot.code, 0);
    await ok(['role', 'add', '--project', 'demo', '--user', 'alice', 'member']);
  });

  it('lists endpoints and regions, and manages a region and a service endpoint', async () => {
    const regions = await cloud.osJson<{ Region: string }[]>(['region', 'list']);
    assert.deepEqual(
      regions.map((r) => r.Region),
      ['site-a'],
    );
    const eps = await cloud.osJson<{ 'Service Type': string; Interface: string; URL: string }[]>([
      'endpoint',
      'list',
    ]);
    const identity = eps.find((e) => e['Service Type'] === 'identity' && e.Interface === 'public');
    assert.equal(identity?.URL, `${cloud.url(0)}/identity`);
    await ok(['region', 'create', '--description', 'lab', 'lab-1']);
    const svc = await cloud.osJson(['service', 'create', '--name', 'metrics', 'metric']);
    const ep = await cloud.osJson([
      'endpoint',
      'create',
      '--region',
      'lab-1',
      svc.id,
      'public',
      'http://metrics.example:8041',
    ]);
    assert.equal(ep.region, 'lab-1');
    await ok(['endpoint', 'delete', ep.id]);
    await ok(['service', 'delete', svc.id]);
    await ok(['region', 'delete', 'lab-1']);
  });

  it('creates an application credential and authenticates with it', async () => {
    const alice = cloud.env(0, { username: 'alice', password: 'alice-pw', project: 'demo' });
    const ac = await cloud.osJson(['application', 'credential', 'create', '--description', 'ci', 'ci-cred'], {
      env: alice,
    });
    assert.ok(ac.secret, 'the secret is shown once');
    assert.match(ac.roles, /member/);
    const listed = await cloud.osJson<{ Name: string }[]>(['application', 'credential', 'list'], {
      env: alice,
    });
    assert.deepEqual(
      listed.map((x) => x.Name),
      ['ci-cred'],
    );
    const shown = await cloud.osJson(['application', 'credential', 'show', 'ci-cred'], { env: alice });
    assert.ok(!('secret' in shown) || shown.secret === null);

    const acEnv = {
      PATH: alice.PATH!,
      HOME: alice.HOME!,
      OS_AUTH_URL: alice.OS_AUTH_URL!,
      OS_IDENTITY_API_VERSION: '3',
      OS_AUTH_TYPE: 'v3applicationcredential',
      OS_APPLICATION_CREDENTIAL_ID: ac.id,
      OS_APPLICATION_CREDENTIAL_SECRET: ac.secret,
      OS_REGION_NAME: 'site-a',
      OS_INTERFACE: 'public',
    };
    const t = await cloud.osJson(['token', 'issue'], { env: acEnv });
    assert.equal(t.project_id, (await cloud.osJson(['project', 'show', 'demo'])).id);
    const bad = await cloud.os(['token', 'issue'], {
      env: { ...acEnv, OS_APPLICATION_CREDENTIAL_SECRET: 'nope' },
    });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /401|authentication/i);

    await ok(['application', 'credential', 'delete', 'ci-cred'], alice);
    const after = await cloud.os(['token', 'issue'], { env: acEnv });
    assert.notEqual(after.code, 0);
  });

  it('issues and revokes tokens; a wrong password is a 401', async () => {
    const t = await cloud.osJson(['token', 'issue']);
    const check = () =>
      fetch(`${cloud.url(0)}/identity/v3/auth/tokens`, {
        headers: { 'x-auth-token': t.id, 'x-subject-token': t.id },
      });
    assert.equal((await check()).status, 200);
    await ok(['token', 'revoke', t.id]);
    assert.equal((await check()).status, 401);
    const usingRevoked = await cloud.os(['project', 'list'], { env: tokenEnv(cloud, t.id) });
    assert.match(usingRevoked.stderr, /401|authentication/i);
    assert.notEqual(usingRevoked.code, 0);

    const wrong = await cloud.os(['token', 'issue'], { env: cloud.env(0, { password: 'wrong' }) });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /401|authentication/i);
  });

  it('changes a password (self-service), disables and deletes a user', async () => {
    const alice = cloud.env(0, { username: 'alice', password: 'alice-pw', project: 'demo' });
    const before = await cloud.osJson(['token', 'issue'], { env: alice });
    await ok(
      ['user', 'password', 'set', '--original-password', 'alice-pw', '--password', 'alice-pw2'],
      alice,
    );
    const revoked = await fetch(`${cloud.url(0)}/identity/v3/auth/tokens`, {
      headers: { 'x-auth-token': before.id, 'x-subject-token': before.id },
    });
    assert.equal(revoked.status, 401, 'changing the password revokes the old tokens');
    const old = await cloud.os(['token', 'issue'], { env: alice });
    assert.notEqual(old.code, 0);
    const alice2 = { ...alice, OS_PASSWORD: 'alice-pw2' };
    await ok(['token', 'issue'], alice2);

    await ok(['user', 'set', '--disable', 'alice']);
    assert.notEqual((await cloud.os(['token', 'issue'], { env: alice2 })).code, 0);
    await ok(['user', 'set', '--enable', 'alice']);
    await ok(['token', 'issue'], alice2);
    await ok(['user', 'delete', 'alice']);
    assert.notEqual((await cloud.os(['token', 'issue'], { env: alice2 })).code, 0);
    await ok(['project', 'delete', 'demo']);
  });

  it('manages domains', async () => {
    const d = await cloud.osJson(['domain', 'create', '--description', 'team', 'team']);
    assert.equal(d.name, 'team');
    await ok(['project', 'create', '--domain', 'team', 'inside']);
    const listed = await cloud.osJson<{ Name: string }[]>(['domain', 'list']);
    assert.deepEqual(listed.map((x) => x.Name).sort(), ['Default', 'team']);
    const enabledDelete = await cloud.os(['domain', 'delete', 'team']);
    assert.notEqual(enabledDelete.code, 0, 'an enabled domain cannot be deleted');
    await ok(['domain', 'set', '--disable', 'team']);
    await ok(['domain', 'delete', 'team']);
    const inside = await cloud.osJson<unknown[]>(['project', 'list', '--domain', 'default']);
    assert.equal(inside.length, 2);
  });
});
