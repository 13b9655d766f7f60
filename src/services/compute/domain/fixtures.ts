/**
 * @module Rows the compute domain's unit tests (*.test.ts beside this file) build on: a member's token
 * and a flavor. Not used by the service itself.
 */
import type { AuthContext } from '../../../core/auth.ts';
import type { FlavorRow } from '../store/schema.ts';

/** A member of project p1. */
export const memberAuth = { userId: 'u1', projectId: 'p1', isAdmin: false, roles: ['member'] } as AuthContext;

/** A public, enabled flavor owned by site-a: 1 disk GB, no ephemeral or swap, unless given. */
export function flavorRow(
  f: Pick<FlavorRow, 'id' | 'name' | 'vcpus' | 'ram'> & Partial<FlavorRow>,
): FlavorRow {
  return {
    owner: 'site-a',
    disk: 1,
    ephemeral: 0,
    swap: 0,
    rxtx_factor: 1,
    is_public: 1,
    disabled: 0,
    description: null,
    extra_specs: '{}',
    created_at: 0,
    ...f,
  };
}
