/**
 * @module GET /extensions and /extensions/{alias} (Nova v2.1's extension_info): since v2.1 the list is
 * a fixed document kept for v2.0 clients that look features up by alias; Nova serves the same one on
 * every deployment, so clients and Tempest expect its entries (`Hosts`, `os-consoles`...).
 */
import type { FastifyInstance } from 'fastify';
import { requireReader } from '../../../core/auth.ts';
import { NotFound } from '../../../core/errors.ts';
import type { ComputeService } from '../service.ts';

const P = '/compute/v2.1';

/** [alias, name] of Nova's v2.1 extension list (nova/api/openstack/compute/extension_info.py). */
const EXTENSIONS: readonly (readonly [string, string])[] = [
  ['NMN', 'Multinic'],
  ['OS-DCF', 'DiskConfig'],
  ['OS-EXT-AZ', 'ExtendedAvailabilityZone'],
  ['OS-EXT-IMG-SIZE', 'ImageSize'],
  ['OS-EXT-IPS', 'ExtendedIps'],
  ['OS-EXT-IPS-MAC', 'ExtendedIpsMac'],
  ['OS-EXT-SRV-ATTR', 'ExtendedServerAttributes'],
  ['OS-EXT-STS', 'ExtendedStatus'],
  ['OS-FLV-DISABLED', 'FlavorDisabled'],
  ['OS-FLV-EXT-DATA', 'FlavorExtraData'],
  ['OS-SCH-HNT', 'SchedulerHints'],
  ['OS-SRV-USG', 'ServerUsage'],
  ['os-access-ips', 'AccessIPs'],
  ['os-admin-actions', 'AdminActions'],
  ['os-admin-password', 'AdminPassword'],
  ['os-aggregates', 'Aggregates'],
  ['os-attach-interfaces', 'AttachInterfaces'],
  ['os-availability-zone', 'AvailabilityZone'],
  ['os-block-device-mapping', 'BlockDeviceMapping'],
  ['os-config-drive', 'ConfigDrive'],
  ['os-console-output', 'ConsoleOutput'],
  ['os-consoles', 'Consoles'],
  ['os-create-backup', 'CreateBackup'],
  ['os-deferred-delete', 'DeferredDelete'],
  ['os-extended-volumes', 'ExtendedVolumes'],
  ['os-flavor-access', 'FlavorAccess'],
  ['os-flavor-extra-specs', 'FlavorExtraSpecs'],
  ['os-flavor-manage', 'FlavorManage'],
  ['os-flavor-rxtx', 'FlavorRxtx'],
  ['os-hide-server-addresses', 'HideServerAddresses'],
  ['os-hosts', 'Hosts'],
  ['os-hypervisors', 'Hypervisors'],
  ['os-instance-actions', 'InstanceActions'],
  ['os-keypairs', 'Keypairs'],
  ['os-lock-server', 'LockServer'],
  ['os-migrate-server', 'MigrateServer'],
  ['os-migrations', 'Migrations'],
  ['os-multiple-create', 'MultipleCreate'],
  ['os-pause-server', 'PauseServer'],
  ['os-quota-sets', 'Quotas'],
  ['os-rescue', 'Rescue'],
  ['os-server-diagnostics', 'ServerDiagnostics'],
  ['os-server-external-events', 'ServerExternalEvents'],
  ['os-server-group-quotas', 'ServerGroupQuotas'],
  ['os-server-groups', 'ServerGroups'],
  ['os-server-password', 'ServerPassword'],
  ['os-server-sort-keys', 'ServerSortKeys'],
  ['os-services', 'Services'],
  ['os-shelve', 'Shelve'],
  ['os-simple-tenant-usage', 'SimpleTenantUsage'],
  ['os-suspend-server', 'SuspendServer'],
  ['os-used-limits', 'UsedLimits'],
  ['os-user-data', 'UserData'],
  ['os-volumes', 'Volumes'],
  ['servers', 'Servers'],
];

const view = ([alias, name]: readonly [string, string]) => ({
  alias,
  name,
  description: `${name} support.`,
  namespace: 'http://docs.openstack.org/compute/ext/fake_xml',
  updated: '2014-12-03T00:00:00Z',
  links: [],
});

export function registerExtensionRoutes(app: FastifyInstance, svc: ComputeService): void {
  app.get(`${P}/extensions`, async (req) => {
    requireReader(svc.ctx.authenticate(req));
    return { extensions: EXTENSIONS.map(view) };
  });
  app.get<{ Params: { alias: string } }>(`${P}/extensions/:alias`, async (req) => {
    requireReader(svc.ctx.authenticate(req));
    const e = EXTENSIONS.find(([alias]) => alias === req.params.alias);
    if (!e) throw new NotFound(`Extension ${req.params.alias} could not be found.`);
    return { extension: view(e) };
  });
}
