/**
 * @module Routes of security groups and their rules
 * (https://docs.openstack.org/api-ref/network/v2/#security-groups-security-groups). A rule is made by
 * its group's owner: a create elsewhere is forwarded there.
 */
import { BadRequest } from '../../../core/errors.ts';
import type { ServiceContext } from '../../common/module.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import { writable } from '../domain/access.ts';
import { requiredRef } from '../domain/records.ts';
import {
  createGroup,
  createRule,
  deleteGroup,
  deleteRule,
  ensureDefaultGroup,
  updateGroup,
} from '../domain/security-groups.ts';
import type { NetworkService } from '../service.ts';
import type { Resource } from './resource.ts';
import { renderGroup, renderRule } from './views.ts';

export function securityGroupResource(svc: NetworkService): Resource {
  const d = svc.deps;
  return {
    kind: 'security_group',
    path: 'security-groups',
    singular: 'security_group',
    collection: 'security_groups',
    label: 'security group',
    render: (r) => renderGroup(svc.repo, r),
    beforeList: (auth) => {
      if (auth.projectId) ensureDefaultGroup(d, auth.projectId);
    },
    create: (_auth, project, o) => {
      ensureDefaultGroup(d, project);
      return renderGroup(svc.repo, createGroup(d, project, o));
    },
    update: (_auth, r, o) => renderGroup(svc.repo, updateGroup(d, r, o)),
    remove: (auth, r) => deleteGroup(d, auth, r),
  };
}

export function securityGroupRuleResource(ctx: ServiceContext, svc: NetworkService): Resource {
  const d = svc.deps;
  return {
    kind: 'security_group_rule',
    path: 'security-group-rules',
    singular: 'security_group_rule',
    collection: 'security_group_rules',
    label: 'security group rule',
    render: renderRule,
    create: async (auth, _project, o, req, reply) => {
      const gid = requiredRef(o, 'security_group_id');
      const g = writable(d, auth, 'security_group', gid, 'security group');
      const fwd = forwardIfRemote(ctx, g.owner, req, reply);
      if (fwd) return fwd;
      return createRule(d, auth, g, o);
    },
    update: () => {
      throw new BadRequest('Security group rules cannot be updated.', 'BadRequest');
    },
    remove: (_auth, r) => deleteRule(d, r),
  };
}
