/**
 * @module The network service assembled for one site: the domain's ports (domain/deps.ts) filled from
 * the site context, the SQL repository, IPAM and the address-block lease agent. Routes (api/) and the
 * compute contract (internal.ts) call the domain commands with `deps`.
 */
import { randomBytes } from 'node:crypto';
import type { ServiceContext } from '../common/module.ts';
import type { NetworkDeps } from './domain/deps.ts';
import type { NetworkDriver } from './domain/driver.ts';
import { subnetForIpam } from './domain/subnets.ts';
import { LeaseAgent, leaseOptions } from './leases.ts';
import { Ipam } from './store/ipam.ts';
import { SqlNetworkRepository } from './store/repository.ts';

export class NetworkService {
  readonly ctx: ServiceContext;
  readonly repo: SqlNetworkRepository;
  readonly ipam: Ipam;
  readonly leases: LeaseAgent;
  readonly deps: NetworkDeps;

  constructor(ctx: ServiceContext, driver: NetworkDriver) {
    this.ctx = ctx;
    const cfg = ctx.config.services.network ?? {};
    const blockSize = typeof cfg.ipBlockSize === 'number' ? cfg.ipBlockSize : 64;
    const lease = leaseOptions(cfg, blockSize, ctx.config.forwardTimeoutMs);
    this.repo = new SqlNetworkRepository(ctx.store, ctx.changelog);
    this.ipam = new Ipam(
      ctx.store.db,
      ctx.changelog,
      ctx.name,
      () => ctx.clock.now(),
      { blockSize, leaseMarginMs: lease.marginMs },
      ctx.ids,
    );
    this.leases = new LeaseAgent(
      ctx,
      this.ipam,
      (id) => {
        const r = this.repo.row('subnet', id);
        return r ? subnetForIpam(r) : undefined;
      },
      lease,
    );
    this.deps = {
      repo: this.repo,
      ipam: this.ipam,
      driver,
      site: {
        name: ctx.name,
        owns: (owner) => ctx.owns(owner),
        knows: (site) => !!ctx.registry.get(site),
      },
      clock: ctx.clock,
      ids: ctx.ids,
      randomBytes: (n) => randomBytes(n),
      macPrefix: typeof cfg.baseMac === 'string' ? cfg.baseMac : 'fa:16:3e',
    };
  }
}
