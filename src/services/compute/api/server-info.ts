/**
 * @module Small per-server reads: the metadata-service password (`os-server-password`; Atoll's guests
 * never post one, so it is empty, and clearing it is a no-op) and `diagnostics` (admins; Nova's v2.1
 * answer is the driver's own dictionary, here the server's resources and power state).
 * https://docs.openstack.org/api-ref/compute/#servers-password-servers-os-server-password
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { canRead, canWrite, requireAdmin } from '../../../core/auth.ts';
import { Forbidden, NotFound } from '../../../core/errors.ts';
import type { ComputeService } from '../service.ts';
import type { ServerRow } from '../store/schema.ts';

const P = '/compute/v2.1';

export function registerServerInfoRoutes(app: FastifyInstance, svc: ComputeService): void {
  type R = FastifyRequest<{ Params: { id: string } }>;
  const server = (req: R): { auth: AuthContext; s: ServerRow } => {
    const auth = svc.ctx.authenticate(req);
    const s = svc.repo.server(req.params.id);
    if (!s || !canRead(auth, s.project_id))
      throw new NotFound(`Instance ${req.params.id} could not be found.`);
    return { auth, s };
  };
  app.get(`${P}/servers/:id/os-server-password`, async (req: R) => {
    server(req);
    return { password: '' };
  });
  app.delete(`${P}/servers/:id/os-server-password`, async (req: R, reply: FastifyReply) => {
    const { auth, s } = server(req);
    if (!canWrite(auth, s.project_id)) throw new Forbidden();
    return reply.code(204).send();
  });
  app.get(`${P}/servers/:id/diagnostics`, async (req: R) => {
    const { auth, s } = server(req);
    requireAdmin(auth);
    return {
      cpu0_time: 0,
      memory: s.ram * 1024,
      vcpus: s.vcpus,
      disk_gb: s.disk,
      power_state: s.power_state,
      host: s.host,
    };
  });
}
