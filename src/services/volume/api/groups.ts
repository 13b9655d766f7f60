/**
 * @module Generic volume groups (`groups`, Cinder 3.13+) and group snapshots (`group_snapshots`,
 * 3.14+): create, list, detail, show, update (add_volumes/remove_volumes), the group's `delete` and
 * `reset_status` (3.20) actions, `groups/action` create-from-src (3.14), a group snapshot's delete and
 * `reset_status` (3.19). A group and its snapshots live on the site that made the group: writes are
 * forwarded there. The rules are domain/groups.ts; these routes gate, forward and render.
 * https://docs.openstack.org/api-ref/block-storage/v3/#generic-volume-groups-groups
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { requireAdmin } from '../../../core/auth.ts';
import { BadRequest, CloudError } from '../../../core/errors.ts';
import { isObj, optStr, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { Microversion } from '../../common/microversion.ts';
import { atLeast } from '../../common/microversion.ts';
import { forwardIfRemote, staleMarks } from '../../common/owner.ts';
import { GROUP_SNAPSHOT_STATUSES, GROUP_STATUSES, VolumeGroups } from '../domain/groups.ts';
import { GroupTypes } from '../domain/group-types.ts';
import { GroupRepository } from '../store/groups.ts';
import type { GroupRow, GroupSnapshotRow } from '../store/groups.ts';
import type { ListingRoutes } from './scope.ts';

/** What POST /volumes asks of the groups: the group a new volume joins, checked, with its site. */
export interface GroupsForVolumes {
  joining(auth: AuthContext, volume: Obj): { id: string; owner: string } | undefined;
}

const truthy = (v: unknown) => ['true', 'True', '1', 'yes'].includes(String(v)) || v === true;

export function registerGroupRoutes({
  app,
  ctx,
  svc,
  base,
  enter,
  listOf,
  listedProject,
}: ListingRoutes): GroupsForVolumes {
  const groups = new VolumeGroups({
    volumes: svc,
    repo: new GroupRepository(ctx.store, ctx.changelog),
    types: new GroupTypes({ repo: svc.repo, ids: ctx.ids }),
    clock: ctx.clock,
    ids: ctx.ids,
    log: ctx.log,
    site: ctx.name,
  });
  const stale = (o: Obj, r: { owner: string }): Obj => ({ ...o, ...staleMarks(ctx, r.owner) });
  /** Groups are 3.13 on, group snapshots 3.14 on: below, 404 as Cinder does for an unknown resource. */
  const gate = (req: FastifyRequest, reply: FastifyReply, min: string, write = false) => {
    const e = enter(req, reply, write);
    if (!atLeast(e.mv, min))
      throw new CloudError(404, `The resource could not be found: this API needs microversion ${min}.`);
    return e;
  };
  const idOf = (req: FastifyRequest) => (req.params as { id: string }).id;

  // Cinder's views (api/v3/views/groups.py, group_snapshots.py), per microversion.
  const groupView = (g: GroupRow, mv: Microversion, req: FastifyRequest): Obj => {
    const b = groups.body(g);
    const out: Obj = {
      id: g.id,
      status: g.status,
      availability_zone: b.availability_zone,
      created_at: b.created_at,
      name: b.name ?? '',
      description: b.description ?? null,
      group_type: b.group_type,
      volume_types: b.volume_types,
    };
    if (atLeast(mv, '3.14')) {
      out.group_snapshot_id = b.group_snapshot_id ?? null;
      out.source_group_id = b.source_group_id ?? null;
    }
    if (atLeast(mv, '3.25') && isObj(req.query) && truthy(req.query.list_volume))
      out.volumes = groups.volumesOf(g.id).map((v) => v.id);
    if (atLeast(mv, '3.38')) out.replication_status = b.replication_status ?? 'disabled';
    if (atLeast(mv, '3.58')) out.project_id = g.project_id;
    return stale(out, g);
  };
  const snapshotView = (s: GroupSnapshotRow, mv: Microversion, detail: boolean): Obj => {
    const b = groups.body(s);
    if (!detail) return { id: s.id, name: b.name ?? '', group_type_id: b.group_type_id };
    const out: Obj = {
      id: s.id,
      group_id: s.group_id,
      group_type_id: b.group_type_id,
      status: s.status,
      created_at: b.created_at,
      name: b.name ?? '',
      description: b.description ?? null,
    };
    if (atLeast(mv, '3.58')) out.project_id = s.project_id;
    return stale(out, s);
  };

  const statusArg = (body: unknown, action: string, allowed: readonly string[]): string => {
    const a = isObj(body) && isObj(body[action]) ? body[action] : {};
    const s = optStr(a, 'status');
    if (!s || !allowed.includes(s))
      throw new BadRequest(`Invalid input received: invalid status ${String(s)}.`);
    return s;
  };

  // ---- groups ----
  const G = `${base}/groups`;
  const groupList = (req: FastifyRequest, reply: FastifyReply, detail: boolean) => {
    const { auth, mv, project } = gate(req, reply, '3.13');
    const rows = groups.list(listedProject(auth, req));
    const full = rows.map((g) => groupView(g, mv, req));
    const items = detail ? full : full.map((g) => ({ id: g.id, name: g.name }));
    return listOf(req, 'groups', items, full, `/volume/v3/${project}/groups${detail ? '/detail' : ''}`);
  };
  app.get(G, async (req, reply) => groupList(req, reply, false));
  app.get(`${G}/detail`, async (req, reply) => groupList(req, reply, true));
  app.get(`${G}/:id`, async (req, reply) => {
    const { auth, mv } = gate(req, reply, '3.13');
    return { group: groupView(groups.visible(auth, idOf(req)), mv, req) };
  });
  app.post(G, async (req, reply) => {
    const { auth, project } = gate(req, reply, '3.13', true);
    const o = wrapped(req.body, 'group');
    const az = optStr(o, 'availability_zone');
    if (az && az !== ctx.name) {
      if (!ctx.registry.get(az)) throw new BadRequest(`Availability zone '${az}' is invalid.`);
      return ctx.forwardTo(az, req, reply);
    }
    const g = groups.create(auth, project, o);
    reply.code(202);
    return { group: { id: g.id, name: g.name } };
  });
  app.put(`${G}/:id`, async (req, reply) => {
    const { auth } = gate(req, reply, '3.13', true);
    const g = groups.visible(auth, idOf(req));
    const fwd = forwardIfRemote(ctx, g.owner, req, reply);
    if (fwd) return fwd;
    groups.update(auth, g, wrapped(req.body, 'group'));
    return reply.code(202).send();
  });
  app.post(`${G}/:id/action`, async (req, reply) => {
    const { auth, mv } = gate(req, reply, '3.13', true);
    const g = groups.visible(auth, idOf(req));
    const fwd = forwardIfRemote(ctx, g.owner, req, reply);
    if (fwd) return fwd;
    const body = isObj(req.body) ? req.body : {};
    if (isObj(body.delete) && Object.keys(body).length === 1) {
      groups.remove(g, truthy(body.delete['delete-volumes']));
      return reply.code(202).send();
    }
    if ('reset_status' in body && atLeast(mv, '3.20')) {
      requireAdmin(auth);
      groups.patch(g, { status: statusArg(body, 'reset_status', GROUP_STATUSES) });
      return reply.code(202).send();
    }
    throw new BadRequest(`There is no such action: ${Object.keys(body).join(', ')}`);
  });
  // create-from-src (3.14): from a group (its volumes cloned) or a group snapshot, on the source's site.
  app.post(`${G}/action`, async (req, reply) => {
    const { auth, project } = gate(req, reply, '3.14', true);
    const o = wrapped(req.body, 'create-from-src');
    const snapId = optStr(o, 'group_snapshot_id');
    const groupId = optStr(o, 'source_group_id');
    if (!!snapId === !!groupId)
      throw new BadRequest(
        'Invalid input received: exactly one of group_snapshot_id and source_group_id must be given.',
      );
    const src = snapId
      ? { groupSnapshot: groups.visibleSnapshot(auth, snapId) }
      : { group: groups.visible(auth, groupId!) };
    const fwd = forwardIfRemote(ctx, (src.group ?? src.groupSnapshot)!.owner, req, reply);
    if (fwd) return fwd;
    const g = await groups.createFrom(auth, project, o, src);
    reply.code(202);
    return { group: { id: g.id, name: g.name } };
  });

  // ---- group snapshots ----
  const S = `${base}/group_snapshots`;
  const snapshotList = (req: FastifyRequest, reply: FastifyReply, detail: boolean) => {
    const { auth, mv, project } = gate(req, reply, '3.14');
    const rows = groups.snapshots(listedProject(auth, req));
    const full = rows.map((s) => snapshotView(s, mv, true));
    const items = detail ? full : rows.map((s) => snapshotView(s, mv, false));
    const path = `/volume/v3/${project}/group_snapshots${detail ? '/detail' : ''}`;
    return listOf(req, 'group_snapshots', items, full, path);
  };
  app.get(S, async (req, reply) => snapshotList(req, reply, false));
  app.get(`${S}/detail`, async (req, reply) => snapshotList(req, reply, true));
  app.get(`${S}/:id`, async (req, reply) => {
    const { auth, mv } = gate(req, reply, '3.14');
    return { group_snapshot: snapshotView(groups.visibleSnapshot(auth, idOf(req)), mv, true) };
  });
  app.post(S, async (req, reply) => {
    const { auth, mv } = gate(req, reply, '3.14', true);
    const o = wrapped(req.body, 'group_snapshot');
    const groupId = optStr(o, 'group_id');
    if (!groupId)
      throw new BadRequest('Invalid input received: group_id must be provided to create a group snapshot.');
    const g = groups.visible(auth, groupId);
    const fwd = forwardIfRemote(ctx, g.owner, req, reply);
    if (fwd) return fwd;
    const s = await groups.snapshot(auth, g, o);
    reply.code(202);
    return { group_snapshot: snapshotView(groups.visibleSnapshot(auth, String(s.id)), mv, false) };
  });
  app.delete(`${S}/:id`, async (req, reply) => {
    const { auth } = gate(req, reply, '3.14', true);
    const s = groups.visibleSnapshot(auth, idOf(req));
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    groups.removeSnapshot(s);
    return reply.code(202).send();
  });
  app.post(`${S}/:id/action`, async (req, reply) => {
    const { auth } = gate(req, reply, '3.19', true);
    const s = groups.visibleSnapshot(auth, idOf(req));
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    const body = isObj(req.body) ? req.body : {};
    if (!('reset_status' in body))
      throw new BadRequest(`There is no such action: ${Object.keys(body).join(', ')}`);
    requireAdmin(auth);
    groups.patchSnapshot(s, { status: statusArg(body, 'reset_status', GROUP_SNAPSHOT_STATUSES) });
    return reply.code(202).send();
  });

  return {
    joining(auth, volume) {
      const id = optStr(volume, 'group_id');
      if (!id) return undefined;
      const g = groups.checkJoin(auth, id, optStr(volume, 'volume_type'));
      return { id: g.id, owner: g.owner };
    },
  };
}
