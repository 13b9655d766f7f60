/**
 * @module Volume transfers (Cinder's os-volume-transfer, and volume-transfers from 3.55): the owner
 * offers a volume, gets a one-time auth key, and another project accepts with the transfer id and the
 * key; the volume (and its snapshots unless no_snapshots) then belongs to the acceptor. The volume waits
 * in `awaiting-transfer` meanwhile (domain/transfers.ts). A transfer lives on the volume's site; create,
 * accept and delete run there (forwarded). Clients that list volumes list transfers first, so both paths answer.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { VolumeRoutes } from './scope.ts';
import { BadRequest, CloudError, NotFound } from '../../../core/errors.ts';
import { isObj, novaTime, optStr, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { Microversion } from '../../common/microversion.ts';
import { atLeast } from '../../common/microversion.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import { VolumeTransfers } from '../domain/transfers.ts';
import type { TransferRow } from '../store/volumes.ts';

export function registerTransferRoutes({ app, ctx, svc, base, enter }: VolumeRoutes): void {
  const transfers = new VolumeTransfers({
    volumes: svc,
    repo: svc.repo,
    clock: ctx.clock,
    ids: ctx.ids,
    site: ctx.name,
  });

  const links = (t: TransferRow, path: string) => [
    { rel: 'self', href: `${ctx.publicUrl()}/volume/v3/${t.project_id}/${path}/${t.id}` },
    { rel: 'bookmark', href: `${ctx.publicUrl()}/volume/${t.project_id}/${path}/${t.id}` },
  ];
  const view = (t: TransferRow, mv: Microversion, path: string, detail: boolean): Obj => {
    const out: Obj = { id: t.id, name: t.name, volume_id: t.volume_id, links: links(t, path) };
    if (!detail) return out;
    out.created_at = novaTime(t.created_at);
    if (atLeast(mv, '3.55')) out.no_snapshots = t.no_snapshots === 1;
    if (atLeast(mv, '3.57')) {
      out.source_project_id = t.project_id;
      out.destination_project_id = null;
      out.accepted = false;
    }
    return out;
  };

  for (const path of ['os-volume-transfer', 'volume-transfers'] as const) {
    const P = `${base}/${path}`;
    /** volume-transfers is the 3.55 API: below it, 404 as Cinder does for an unknown resource. */
    const gate = (req: FastifyRequest, reply: FastifyReply, write = false) => {
      const e = enter(req, reply, write);
      if (path === 'volume-transfers' && !atLeast(e.mv, '3.55'))
        throw new CloudError(
          404,
          'The resource could not be found: volume-transfers needs microversion 3.55.',
        );
      return e;
    };
    const list = (req: FastifyRequest, reply: FastifyReply, detail: boolean) => {
      const { auth, mv, project } = gate(req, reply);
      const q = isObj(req.query) ? req.query : {};
      const all = auth.isAdmin && ['1', 'true', 'True'].includes(String(q.all_tenants ?? ''));
      const rows = transfers.list(all ? undefined : project);
      return { transfers: rows.map((t) => view(t, mv, path, detail)) };
    };
    app.get(P, async (req, reply) => list(req, reply, false));
    app.get(`${P}/detail`, async (req, reply) => list(req, reply, true));
    app.get(`${P}/:id`, async (req, reply) => {
      const { auth, mv } = gate(req, reply);
      return { transfer: view(transfers.visible(auth, (req.params as { id: string }).id), mv, path, true) };
    });
    app.post(P, async (req, reply) => {
      const { auth, mv } = gate(req, reply, true);
      const o = wrapped(req.body, 'transfer');
      const volumeId = optStr(o, 'volume_id');
      if (!volumeId) throw new BadRequest('Invalid input received: volume_id is required.');
      const vol = svc.visibleVolume(auth, volumeId);
      const fwd = forwardIfRemote(ctx, vol.owner, req, reply);
      if (fwd) return fwd;
      const { t, key } = transfers.create(vol, o);
      reply.code(202);
      return { transfer: { ...view(t, mv, path, true), auth_key: key } };
    });
    app.post(`${P}/:id/accept`, async (req, reply) => {
      const { auth, mv } = gate(req, reply, true);
      const { id } = req.params as { id: string };
      const t = transfers.get(id);
      if (!t) throw new NotFound(`Transfer ${id} could not be found.`);
      const fwd = forwardIfRemote(ctx, t.owner, req, reply);
      if (fwd) return fwd;
      const key = optStr(wrapped(req.body, 'accept'), 'auth_key');
      if (!key) throw new BadRequest('Invalid input received: auth_key is required.');
      transfers.accept(auth, t, key);
      reply.code(202);
      return { transfer: view(t, mv, path, false) };
    });
    app.delete(`${P}/:id`, async (req, reply) => {
      const { auth } = gate(req, reply, true);
      const t = transfers.visible(auth, (req.params as { id: string }).id);
      const fwd = forwardIfRemote(ctx, t.owner, req, reply);
      if (fwd) return fwd;
      transfers.remove(t);
      return reply.code(202).send();
    });
  }
}
