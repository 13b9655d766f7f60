/**
 * @module `os-server-external-events` (admin: the Network and Block Storage services tell Nova about
 * a server's ports and volumes) and `os-migrations` (admin). Atoll's services call the compute
 * service in process, so an event is checked and acknowledged and changes nothing; Atoll keeps no
 * migration records (a resize stays on its host's site and is not a migration), so the list is empty.
 * https://docs.openstack.org/api-ref/compute/#create-external-events-os-server-external-events
 */
import type { FastifyInstance } from 'fastify';
import { canRead, requireAdmin } from '../../../core/auth.ts';
import { BadRequest, NotFound } from '../../../core/errors.ts';
import { isObj } from '../../common/input.ts';
import type { ComputeService } from '../service.ts';
import { atLeast } from './microversion.ts';

const P = '/compute/v2.1';
const STATUSES = ['failed', 'completed', 'in-progress'];

/** The event names of a microversion (Nova's schema: volume-extended from 2.51, power-update 2.76). */
function names(v: (x: string) => boolean): string[] {
  const out = ['network-changed', 'network-vif-plugged', 'network-vif-unplugged', 'network-vif-deleted'];
  if (v('2.51')) out.push('volume-extended');
  if (v('2.76')) out.push('power-update');
  return out;
}

export function registerServerEventRoutes(app: FastifyInstance, svc: ComputeService): void {
  app.post(`${P}/os-server-external-events`, async (req, reply) => {
    const auth = svc.ctx.authenticate(req);
    requireAdmin(auth);
    const events = isObj(req.body) ? req.body.events : undefined;
    if (!Array.isArray(events) || !events.length)
      throw new BadRequest("Invalid input for field/attribute events. 'events' is a required property");
    const allowed = names((x) => atLeast(req, x));
    const out = events.map((e: unknown) => {
      if (!isObj(e) || typeof e.server_uuid !== 'string' || typeof e.name !== 'string')
        throw new BadRequest('Invalid input for field/attribute events.');
      if (!allowed.includes(e.name))
        throw new BadRequest(`Invalid input for field/attribute name. Value: ${e.name}.`);
      const status = e.status ?? 'completed';
      if (typeof status !== 'string' || !STATUSES.includes(status))
        throw new BadRequest(`Invalid input for field/attribute status. Value: ${String(status)}.`);
      if (e.tag !== undefined && (typeof e.tag !== 'string' || e.tag.length > 255))
        throw new BadRequest('Invalid input for field/attribute tag.');
      const s = svc.repo.server(e.server_uuid);
      const found = !!s && canRead(auth, s.project_id) && s.host !== null;
      return {
        server_uuid: e.server_uuid,
        name: e.name,
        status,
        ...(e.tag !== undefined ? { tag: e.tag } : {}),
        code: found ? 200 : 404,
      };
    });
    // Nova: 200 when every event was taken, 207 when some were, a 404 fault when none was.
    const ok = out.filter((e) => e.code === 200).length;
    if (ok === 0) throw new NotFound('No instances found for any event');
    reply.code(ok === out.length ? 200 : 207);
    return { events: out };
  });

  app.get(`${P}/os-migrations`, async (req) => {
    requireAdmin(svc.ctx.authenticate(req));
    return { migrations: [] };
  });
}
