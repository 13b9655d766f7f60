/**
 * @module Routes of metering labels and their rules (https://docs.openstack.org/api-ref/network/v2/#metering-labels):
 * an admin's, stored and served, metering nothing (domain/metering.ts). A rule is made by its label's
 * owner site: a create elsewhere is forwarded there.
 */
import { requireAdmin } from '../../../core/auth.ts';
import { CloudError } from '../../../core/errors.ts';
import type { ServiceContext } from '../../common/module.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import { visible } from '../domain/access.ts';
import {
  createMeteringLabel,
  createMeteringRule,
  deleteMeteringLabel,
  renderMetering,
} from '../domain/metering.ts';
import { requiredRef } from '../domain/records.ts';
import type { NetworkService } from '../service.ts';
import type { Resource } from './resource.ts';

/** Neutron has no update of a metering label or rule. */
function noUpdate(what: string): never {
  throw new CloudError(405, `A ${what} cannot be updated.`, { detailType: 'HTTPMethodNotAllowed' });
}

export function meteringLabelResource(svc: NetworkService): Resource {
  const d = svc.deps;
  return {
    kind: 'metering_label',
    path: 'metering/metering-labels',
    singular: 'metering_label',
    collection: 'metering_labels',
    label: 'metering label',
    render: renderMetering,
    create: (auth, project, o) => {
      requireAdmin(auth);
      return renderMetering(createMeteringLabel(d, project, o));
    },
    update: () => noUpdate('metering label'),
    remove: (_auth, r) => deleteMeteringLabel(d, r),
  };
}

export function meteringRuleResource(ctx: ServiceContext, svc: NetworkService): Resource {
  const d = svc.deps;
  return {
    kind: 'metering_label_rule',
    path: 'metering/metering-label-rules',
    singular: 'metering_label_rule',
    collection: 'metering_label_rules',
    label: 'metering label rule',
    render: renderMetering,
    create: async (auth, _project, o, req, reply) => {
      requireAdmin(auth);
      const label = visible(d, auth, 'metering_label', requiredRef(o, 'metering_label_id'), 'metering label');
      const fwd = forwardIfRemote(ctx, label.owner, req, reply);
      if (fwd) return fwd;
      return renderMetering(createMeteringRule(d, label, o));
    },
    update: () => noUpdate('metering label rule'),
    remove: (_auth, r) => d.repo.tx(() => d.repo.remove('metering_label_rule', r.id)),
  };
}
