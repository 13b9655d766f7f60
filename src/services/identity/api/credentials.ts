/**
 * @module Credentials (/v3/credentials) and EC2 credentials (/v3/users/{u}/credentials/OS-EC2), which
 * Keystone keeps in the same table as credentials of type `ec2` whose id is the SHA-256 of the access
 * key. A user manages their own; a cloud admin anyone's (Keystone's default policy). A credential
 * belongs to its user's home site; writes made elsewhere are forwarded there.
 * Not done: Keystone encrypts blobs at rest with its credential keys; here a blob is stored as given,
 * in every site's replica. `POST /v3/ec2tokens` (signature authentication) is not offered.
 * https://docs.openstack.org/api-ref/identity/v3/#credentials
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createHash, randomBytes } from 'node:crypto';
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, Forbidden } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { notFound } from '../domain/common.ts';
import { deleteCredential, putCredential } from '../domain/credentials.ts';
import type { CredentialRow, UserRow } from '../store/schema.ts';
import { collection, extraOf, forwardIfRemote, param, parseExtra, q, selfLinks, v3Url } from './common.ts';
import { isCloudAdmin } from './policy.ts';

const KNOWN = ['id', 'user_id', 'project_id', 'type', 'blob'];
const MAX_BLOB = 65_535;

const ec2Id = (access: string): string => createHash('sha256').update(access).digest('hex');

/** An EC2 blob as Keystone stores it: {"access", "secret", "trust_id"}; undefined when not one. */
function ec2Blob(blob: string): { access: string; secret: string; trust_id?: string | null } | undefined {
  try {
    const v = JSON.parse(blob) as unknown;
    if (v && typeof v === 'object' && typeof (v as Obj).access === 'string')
      return v as { access: string; secret: string };
  } catch {
    // not JSON: not an EC2 blob
  }
  return undefined;
}

export function registerCredentialRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader, repos } = ic;
  const view = (c: CredentialRow): Obj => ({
    ...parseExtra(c.extra),
    id: c.id,
    user_id: c.user_id,
    project_id: c.project_id,
    type: c.type,
    blob: c.blob,
    links: selfLinks(ic, `credentials/${c.id}`),
  });
  const mayManage = (ctx: AuthContext, userId: string): boolean => ctx.userId === userId || isCloudAdmin(ctx);
  const userOf = (id: string): UserRow => {
    const u = reader.user(id);
    if (!u) throw notFound('user', id);
    return u;
  };
  /** The credential, when the caller may see it; 404 otherwise (as Keystone, no existence leak). */
  const load = (req: FastifyRequest): { ctx: AuthContext; c: CredentialRow } => {
    const ctx = site.authenticate(req);
    const id = param(req, 'credential_id');
    const c = repos.credentials.get(id);
    if (!c || !mayManage(ctx, c.user_id)) {
      if (c) throw new Forbidden();
      throw notFound('credential', id);
    }
    return { ctx, c };
  };
  /** For type ec2: the project is required and the id is derived from the access key. */
  const checked = (type: string, blob: string, projectId: string | null): string | undefined => {
    if (type !== 'ec2') return undefined;
    const b = ec2Blob(blob);
    if (!b) throw new BadRequest('The blob of an ec2 credential must be JSON with an "access" key.');
    if (!projectId) throw new BadRequest('An ec2 credential needs a project_id.');
    return ec2Id(b.access);
  };

  app.get('/identity/v3/credentials', async (req) => {
    const ctx = site.authenticate(req);
    const qs = q(req);
    let rows = isCloudAdmin(ctx)
      ? qs.user_id !== undefined
        ? repos.credentials.ofUser(qs.user_id)
        : repos.credentials.all()
      : repos.credentials.ofUser(ctx.userId);
    if (qs.user_id !== undefined) rows = rows.filter((c) => c.user_id === qs.user_id);
    if (qs.type !== undefined) rows = rows.filter((c) => c.type === qs.type);
    return collection(ic, req, 'credentials', rows.map(view));
  });
  app.get('/identity/v3/credentials/:credential_id', async (req) => ({ credential: view(load(req).c) }));
  app.post('/identity/v3/credentials', async (req, reply) => {
    const ctx = site.authenticate(req);
    const b = wrapped(req.body, 'credential');
    const userId = reqStr(b, 'user_id', { max: 64 });
    if (!mayManage(ctx, userId)) throw new Forbidden();
    const u = userOf(userId);
    const type = reqStr(b, 'type', { max: 255 });
    const blob = reqStr(b, 'blob', { max: MAX_BLOB });
    const projectId = optStr(b, 'project_id', { max: 64 }) ?? null;
    if (projectId !== null && !reader.project(projectId)) throw notFound('project', projectId);
    const id = checked(type, blob, projectId);
    if (id && repos.credentials.get(id)) throw new BadRequest('A credential with this access key exists.');
    const fwd = forwardIfRemote(site, u.owner, req, reply);
    if (fwd) return fwd;
    const row = putCredential(ic, {
      ...(id ? { id } : {}),
      user_id: u.id,
      project_id: projectId,
      type,
      blob,
      extra: extraOf(b, KNOWN, undefined),
    });
    reply.code(201);
    return { credential: view(row) };
  });
  app.patch('/identity/v3/credentials/:credential_id', async (req, reply) => {
    const { ctx, c } = load(req);
    const b = wrapped(req.body, 'credential');
    const userId = optStr(b, 'user_id', { max: 64, min: 1 }) ?? c.user_id;
    if (userId !== c.user_id && !isCloudAdmin(ctx)) throw new Forbidden();
    if (userId !== c.user_id) userOf(userId);
    const type = optStr(b, 'type', { max: 255, min: 1 }) ?? c.type;
    const blob = optStr(b, 'blob', { max: MAX_BLOB, min: 1 }) ?? c.blob;
    const projectId = b.project_id === null ? null : (optStr(b, 'project_id', { max: 64 }) ?? c.project_id);
    if (projectId !== null && projectId !== c.project_id && !reader.project(projectId))
      throw notFound('project', projectId);
    // Keystone checks an ec2 blob and project on update too; the id stays (it was derived at create).
    checked(type, blob, projectId);
    if (userId !== c.user_id && userOf(userId).owner !== c.owner)
      throw new BadRequest('A credential cannot move to a user of another site.');
    const fwd = forwardIfRemote(site, c.owner, req, reply);
    if (fwd) return fwd;
    const row = putCredential(ic, {
      id: c.id,
      user_id: userId,
      project_id: projectId,
      type,
      blob,
      extra: extraOf(b, KNOWN, c.extra),
    });
    return { credential: view(row) };
  });
  app.delete('/identity/v3/credentials/:credential_id', async (req, reply) => {
    const { c } = load(req);
    const fwd = forwardIfRemote(site, c.owner, req, reply);
    if (fwd) return fwd;
    deleteCredential(ic, c.id);
    return reply.code(204).send();
  });

  // EC2 credentials, Keystone's OS-EC2 view of credentials of type ec2.
  const ec2Base = '/identity/v3/users/:user_id/credentials/OS-EC2';
  const ec2View = (c: CredentialRow): Obj => {
    const b = ec2Blob(c.blob);
    return {
      user_id: c.user_id,
      tenant_id: c.project_id,
      access: b?.access ?? null,
      secret: b?.secret ?? null,
      trust_id: b?.trust_id ?? null,
      links: { self: v3Url(ic, `users/${c.user_id}/credentials/OS-EC2/${b?.access ?? ''}`) },
    };
  };
  const ec2Subject = (req: FastifyRequest): { ctx: AuthContext; u: UserRow } => {
    const ctx = site.authenticate(req);
    const uid = param(req, 'user_id');
    if (!mayManage(ctx, uid)) throw new Forbidden();
    return { ctx, u: userOf(uid) };
  };
  const ec2Load = (req: FastifyRequest): { u: UserRow; c: CredentialRow } => {
    const { u } = ec2Subject(req);
    const access = param(req, 'access');
    const c = repos.credentials.get(ec2Id(access));
    if (!c || c.type !== 'ec2' || c.user_id !== u.id) throw notFound('credential', access);
    return { u, c };
  };

  app.get(ec2Base, async (req) => {
    const { u } = ec2Subject(req);
    const rows = repos.credentials.ofUser(u.id).filter((c) => c.type === 'ec2');
    return collection(ic, req, 'credentials', rows.map(ec2View));
  });
  app.get(`${ec2Base}/:access`, async (req) => ({ credential: ec2View(ec2Load(req).c) }));
  app.post(ec2Base, async (req, reply) => {
    const { ctx, u } = ec2Subject(req);
    const b = req.body === undefined || req.body === null ? {} : wrappedFlat(req.body);
    const projectId = reqStr(b, 'tenant_id', { max: 64 });
    const p = reader.project(projectId);
    if (!p) throw notFound('project', projectId);
    // The user must hold a role on the project (Keystone checks the same).
    if (!isCloudAdmin(ctx) && reader.roles(u.id, { projectId }).length === 0) throw new Forbidden();
    const fwd = forwardIfRemote(site, u.owner, req, reply);
    if (fwd) return fwd;
    const access = randomBytes(16).toString('hex');
    const secret = randomBytes(16).toString('hex');
    const row = putCredential(ic, {
      id: ec2Id(access),
      user_id: u.id,
      project_id: projectId,
      type: 'ec2',
      blob: JSON.stringify({ access, secret, trust_id: null }),
      extra: '{}',
    });
    reply.code(201);
    return { credential: ec2View(row) };
  });
  app.delete(`${ec2Base}/:access`, async (req, reply) => {
    const { c } = ec2Load(req);
    const fwd = forwardIfRemote(site, c.owner, req, reply);
    if (fwd) return fwd;
    deleteCredential(ic, c.id);
    return reply.code(204).send();
  });
}

/** The EC2 create body is flat ({"tenant_id": ...}), not wrapped. */
function wrappedFlat(body: unknown): Obj {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new BadRequest('The request body must be a JSON object.');
  return body as Obj;
}
