/**
 * @module Routes of tags on each taggable resource (https://docs.openstack.org/api-ref/network/v2/#standard-attributes-tag-extension):
 * GET/PUT/DELETE /v2.0/{collection}/{id}/tags and GET/PUT/DELETE …/tags/{tag}. Reads are answered
 * here; a change to a resource another site owns is forwarded to that owner.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { requireReader } from '../../../core/auth.ts';
import type { ServiceContext } from '../../common/module.ts';
import { isObj } from '../../common/input.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import { visible, writable } from '../domain/access.ts';
import type { StoredRow } from '../domain/deps.ts';
import { checkTag, checkTags, requireTag, setTags, tagsOf } from '../domain/tags.ts';
import type { NetworkService } from '../service.ts';
import type { Resource } from './resource.ts';
import { V2 } from './resource.ts';

export function registerTagRoutes(
  app: FastifyInstance,
  ctx: ServiceContext,
  svc: NetworkService,
  res: Pick<Resource, 'kind' | 'path' | 'label'>,
): void {
  const d = svc.deps;
  const base = `${V2}/${res.path}/:id/tags`;
  const read = (req: FastifyRequest) => {
    const auth = ctx.authenticate(req);
    requireReader(auth);
    return visible(d, auth, res.kind, (req.params as { id: string }).id, res.label);
  };
  /** A tag change: the caller may change the resource, and it runs at the resource's owner. */
  const change = (
    run: (r: StoredRow, req: FastifyRequest, reply: FastifyReply, auth: AuthContext) => unknown,
  ) => {
    return async (req: FastifyRequest, reply: FastifyReply) => {
      const auth = ctx.authenticate(req);
      const r = writable(d, auth, res.kind, (req.params as { id: string }).id, res.label);
      return forwardIfRemote(ctx, r.owner, req, reply) ?? run(r, req, reply, auth);
    };
  };
  const tagParam = (req: FastifyRequest) => checkTag((req.params as { tag: string }).tag);

  app.get(base, async (req) => ({ tags: tagsOf(read(req)) }));
  app.get(`${base}/:tag`, async (req, reply) => {
    const r = read(req);
    requireTag(r, res.kind, (req.params as { tag: string }).tag);
    return reply.code(204).send();
  });
  app.put(
    base,
    change((r, req) => {
      const body = req.body;
      const tags = checkTags(isObj(body) ? body.tags : undefined);
      return { tags: setTags(d, res.kind, r, tags) };
    }),
  );
  app.put(
    `${base}/:tag`,
    change((r, req, reply) => {
      const tag = tagParam(req);
      const cur = tagsOf(r);
      if (!cur.includes(tag)) setTags(d, res.kind, r, [...cur, tag]);
      return reply.code(201).send();
    }),
  );
  app.delete(
    base,
    change((r, _req, reply) => {
      if (tagsOf(r).length) setTags(d, res.kind, r, []);
      return reply.code(204).send();
    }),
  );
  app.delete(
    `${base}/:tag`,
    change((r, req, reply) => {
      const tag = (req.params as { tag: string }).tag;
      requireTag(r, res.kind, tag);
      setTags(
        d,
        res.kind,
        r,
        tagsOf(r).filter((t) => t !== tag),
      );
      return reply.code(204).send();
    }),
  );
}
