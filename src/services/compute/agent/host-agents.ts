/**
 * @module Compute host agents: the process side of a hypervisor. One pool serves every host it runs
 * through a single wildcard subscription (atoll.<site>.rpc.host.*), which is what lets one process
 * carry thousands of fake hosts; each request is still addressed to one host's own subject.
 */
import type { Fabric } from '../../../fabric/fabric.ts';
import { FabricError, decodeJson, encodeJson, subjects } from '../../../fabric/fabric.ts';
import { CloudError, SiteUnavailable } from '../../../core/errors.ts';
import type { ComputeDriver, DriverOp, HostRpc, HostRpcReply, InstanceSpec } from './driver.ts';

export const hostSubject = (site: string, host: string) => subjects.rpc(site, `host.${host}`);

export class HostAgentPool {
  private hosts = new Set<string>();
  private stop: (() => void) | undefined;

  constructor(
    private fabric: Fabric,
    private site: string,
    private driver: ComputeDriver,
  ) {}

  add(host: string): void {
    this.hosts.add(host);
  }

  start(): void {
    const prefix = subjects.rpc(this.site, 'host.');
    this.stop = this.fabric.serve(subjects.rpc(this.site, 'host.*'), async (data) => {
      let reply: HostRpcReply;
      try {
        const req = decodeJson<HostRpc & { host: string }>(data);
        const h = req.host;
        if (!this.hosts.has(h)) throw new Error(`host ${h} is not served here (${prefix})`);
        const r = await this.driver.run(h, req.op, req.instance);
        reply = { ok: true, powerState: r.powerState, ...(r.data !== undefined ? { data: r.data } : {}) };
      } catch (e) {
        reply = {
          ok: false,
          error: { type: 'DriverError', message: (e as Error).message, retryable: false },
        };
      }
      return encodeJson(reply);
    });
  }

  close(): void {
    this.stop?.();
  }
}

/** The controller's side: one call to one host's agent, errors come back as CloudError. */
export async function callHost(
  fabric: Fabric,
  site: string,
  host: string,
  op: DriverOp,
  instance: InstanceSpec,
  timeoutMs: number,
): Promise<{ powerState: number; data?: string }> {
  let raw: Uint8Array;
  try {
    raw = await fabric.request(hostSubject(site, host), encodeJson({ op, instance, host }), timeoutMs);
  } catch (e) {
    throw new SiteUnavailable(
      site,
      `compute host ${host} did not answer: ${e instanceof FabricError ? e.code : String(e)}`,
    );
  }
  const r = decodeJson<HostRpcReply>(raw);
  if (!r.ok) throw new CloudError(500, r.error.message);
  return r.data !== undefined ? { powerState: r.powerState, data: r.data } : { powerState: r.powerState };
}
