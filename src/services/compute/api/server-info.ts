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
import { atLeast } from './microversion.ts';

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
    if (atLeast(req, '2.48')) {
      // Nova's standard shape. Its driver field names one of Nova's virt drivers only; Nova's own
      // fake driver answers 'libvirt', and so does Atoll (the QEMU driver is the closest to it).
      const state: Record<string, string> = {
        active: 'running',
        paused: 'paused',
        suspended: 'suspended',
        stopped: 'shutdown',
        error: 'crashed',
      };
      const volumes = svc.volume?.attachmentsOf(s.id).length ?? 0;
      const nics = (JSON.parse(s.addresses) as unknown[]).length;
      const now = svc.ctx.clock.now();
      return {
        state: state[s.vm_state] ?? 'pending',
        driver: 'libvirt',
        hypervisor: svc.hypervisor.accel ?? svc.hypervisor.type.toLowerCase(),
        hypervisor_os: 'linux',
        uptime: s.launched_at && s.vm_state === 'active' ? Math.floor((now - s.launched_at) / 1000) : null,
        config_drive: false,
        num_cpus: s.vcpus,
        num_nics: nics,
        num_disks: 1 + volumes,
        memory_details: { maximum: s.ram, used: null },
        cpu_details: Array.from({ length: s.vcpus }, (_, id) => ({ id, time: null, utilisation: null })),
        nic_details: Array.from({ length: nics }, () => ({
          mac_address: null,
          rx_octets: null,
          rx_errors: null,
          rx_drop: null,
          rx_packets: null,
          rx_rate: null,
          tx_octets: null,
          tx_errors: null,
          tx_drop: null,
          tx_packets: null,
          tx_rate: null,
        })),
        disk_details: Array.from({ length: 1 + volumes }, () => ({
          read_bytes: null,
          read_requests: null,
          write_bytes: null,
          write_requests: null,
          errors_count: null,
        })),
      };
    }
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
