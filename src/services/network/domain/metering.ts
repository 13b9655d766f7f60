/**
 * @module Metering labels and rules (https://docs.openstack.org/api-ref/network/v2/#metering-labels,
 * #metering-label-rules). They are stored, listed and replicated like other resources, and they
 * meter nothing: Atoll's data plane counts no traffic against them (docs/network.md). A label is
 * an admin's; deleting it deletes its rules. Neither has an update in Neutron.
 */
import { BadRequest, Conflict } from '../../../core/errors.ts';
import { optBool, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { NetworkDeps, StoredRow } from './deps.ts';
import { parseCidr } from './ip.ts';
import { bodyOf, requiredRef, save } from './records.ts';

export function createMeteringLabel(d: NetworkDeps, projectId: string, o: Obj): StoredRow {
  const id = d.ids.uuid();
  const body: Obj = {
    id,
    name: optStr(o, 'name') ?? '',
    description: optStr(o, 'description') ?? '',
    project_id: projectId,
    tenant_id: projectId,
    shared: optBool(o, 'shared') ?? false,
  };
  d.repo.tx(() => save(d, 'metering_label', { name: body.name }, body));
  return d.repo.row('metering_label', id)!;
}

export function deleteMeteringLabel(d: NetworkDeps, r: StoredRow): void {
  d.repo.tx(() => {
    for (const rule of d.repo.meteringRulesOf(r.id)) d.repo.remove('metering_label_rule', rule.id);
    d.repo.remove('metering_label', r.id);
  });
}

/** A prefix of a rule: a CIDR (a host address is taken as its /32 or /128, as Neutron does), or null. */
function prefixOf(o: Obj, field: string): string | null {
  const v = o[field];
  if (v === undefined || v === null) return null;
  const text = typeof v === 'string' ? (v.includes('/') ? v : `${v}/${v.includes(':') ? 128 : 32}`) : '';
  const c = parseCidr(text, false);
  if (!c)
    throw new BadRequest(
      `Invalid input for ${field}. Reason: '${String(v)}' is not a valid IP subnet.`,
      'InvalidInput',
    );
  return text;
}

export function createMeteringRule(d: NetworkDeps, label: StoredRow, o: Obj): StoredRow {
  requiredRef(o, 'metering_label_id');
  const direction = optStr(o, 'direction') ?? 'ingress';
  if (direction !== 'ingress' && direction !== 'egress')
    throw new BadRequest(
      `Invalid input for direction. Reason: '${direction}' is not in ['ingress', 'egress'].`,
      'InvalidInput',
    );
  const remote = prefixOf(o, 'remote_ip_prefix');
  const source = prefixOf(o, 'source_ip_prefix');
  const destination = prefixOf(o, 'destination_ip_prefix');
  if (remote && (source || destination))
    throw new BadRequest(
      'Cannot use remote_ip_prefix with source_ip_prefix or destination_ip_prefix.',
      'InvalidInput',
    );
  const excluded = optBool(o, 'excluded') ?? false;
  const id = d.ids.uuid();
  const projectId = label.project_id;
  const body: Obj = {
    id,
    metering_label_id: label.id,
    direction,
    excluded,
    remote_ip_prefix: remote,
    source_ip_prefix: source,
    destination_ip_prefix: destination,
    project_id: projectId,
    tenant_id: projectId,
  };
  d.repo.tx(() => {
    // The same match twice in a label is Neutron's MeteringLabelRuleOverlaps (409).
    const same = d.repo.meteringRulesOf(label.id).some((x) => {
      const b = bodyOf(x);
      return (
        b.direction === direction &&
        b.excluded === excluded &&
        b.remote_ip_prefix === remote &&
        b.source_ip_prefix === source &&
        b.destination_ip_prefix === destination
      );
    });
    if (same)
      throw new Conflict(
        `A metering label rule with the same match already exists in label ${label.id}.`,
        'MeteringLabelRuleOverlaps',
      );
    save(d, 'metering_label_rule', { metering_label_id: label.id }, body);
  });
  return d.repo.row('metering_label_rule', id)!;
}

/** A label or rule as Neutron shows it (no standard attributes: no timestamps, no revision). */
export function renderMetering(r: StoredRow): Obj {
  const { created_at: _c, updated_at: _u, revision_number: _r, ...b } = bodyOf(r);
  return b;
}
