/**
 * @module Compute host agents: the process side of a hypervisor. One pool serves every host it runs
 * through a single wildcard subscription (atoll.<site>.rpc.host.*), which is what lets one process
 * carry thousands of fake hosts; each request is still addressed to one host's own subject.
 */
import type { Fabric } from '../../../fabric/fabric.ts';
import { subjects } from '../../../fabric/fabric.ts';
import { defineRpc } from '../../../fabric/rpc.ts';
import { CloudError } from '../../../core/errors.ts';
import type { ComputeDriver, DriverOp, DriverResult, HostRpc, InstanceSpec } from './driver.ts';

export const hostSubject = (site: string, host: string) => subjects.rpc(site, `host.${host}`);

/** `atoll.<site>.rpc.host.<host>`: one driver operation on one host; a driver failure is a 500 with its message. */
export const hostRpc = defineRpc<HostRpc & { host: string }, DriverResult>({
  name: 'host',
  version: 2,
});

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
    this.stop = hostRpc.serve(
      this.fabric,
      async (req) => {
        const h = req.host;
        if (!this.hosts.has(h)) throw new Error(`host ${h} is not served here (${prefix})`);
        const r = await this.driver.run(h, req.op, req.instance);
        return {
          powerState: r.powerState,
          ...(r.data !== undefined ? { data: r.data } : {}),
          ...(r.file !== undefined ? { file: r.file } : {}),
        };
      },
      {
        subject: subjects.rpc(this.site, 'host.*'),
        internal: (e) => new CloudError(500, (e as Error).message),
      },
    );
  }

  close(): void {
    this.stop?.();
  }
}

/** The controller's side: one call to one host's agent, errors come back as CloudError. */
export function callHost(
  fabric: Fabric,
  site: string,
  host: string,
  op: DriverOp,
  instance: InstanceSpec,
  timeoutMs: number,
): Promise<DriverResult> {
  return hostRpc.call(
    fabric,
    site,
    { op, instance, host },
    {
      timeoutMs,
      subject: hostSubject(site, host),
      unreachable: (why) => `compute host ${host} did not answer: ${why}`,
    },
  );
}
