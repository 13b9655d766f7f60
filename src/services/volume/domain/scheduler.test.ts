/** @module Cinder's CapabilitiesFilter and extra spec operators, as the volume scheduler applies them. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backendCapabilities, matches, unmatchedSpec } from './scheduler.ts';

describe('volume scheduler: capabilities filter', () => {
  const caps = backendCapabilities('file', '');
  it('matches what the backend reports, and names the first spec it does not', () => {
    assert.equal(unmatchedSpec({ storage_protocol: 'iSCSI', vendor_name: 'Open Source' }, caps), undefined);
    assert.equal(unmatchedSpec({ 'capabilities:volume_backend_name': 'file' }, caps), undefined);
    assert.equal(unmatchedSpec({ storage_protocol: 'carrier-pigeon' }, caps), 'storage_protocol');
    assert.equal(unmatchedSpec({ colour: 'blue' }, caps), 'colour', 'a capability nobody reports');
    assert.equal(unmatchedSpec({ 'RESKEY:availability_zones': 'x', 'vendor:thing': 'y' }, caps), undefined);
  });
  it("reads Cinder's operators", () => {
    assert.ok(matches(true, '<is> True'));
    assert.ok(!matches(false, '<is> True'));
    assert.ok(matches('iSCSI', '<in> SCSI'));
    assert.ok(matches('iSCSI', '<or> FC <or> iSCSI'));
    assert.ok(!matches('NFS', '<or> FC <or> iSCSI'));
    assert.ok(matches('abc', 's== abc'));
    assert.ok(matches(10, '>= 5') && !matches(1, '>= 5'));
    assert.ok(matches(10, '== 10') && !matches(11, '== 10'));
    assert.ok(matches('infinite', '>= 100'));
    assert.ok(matches('Open Source', 'Open Source') && !matches('Open Source', 'Closed'));
  });
});
