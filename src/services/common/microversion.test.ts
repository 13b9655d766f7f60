/**
 * @module Unit tests of the shared microversion parser and range: versions compare as {major, minor}
 * (3.60 above 3.6, 3.100 above both), headers are read per service, and out-of-range versions are 406.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  MicroversionRange,
  atLeast,
  compareMicroversions,
  formatMicroversion,
  microversion,
  parseMicroversion,
} from './microversion.ts';
import { CloudError } from '../../core/errors.ts';

const status = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof CloudError);
    return e.status;
  }
  return 200;
};

describe('microversion parsing and comparing', () => {
  it('reads "X.Y" as two integers and nothing else', () => {
    assert.deepEqual(parseMicroversion('3.60'), { major: 3, minor: 60 });
    assert.deepEqual(parseMicroversion(' 2.1 '), { major: 2, minor: 1 });
    for (const bad of ['3', '3.', '.6', '3.6.1', 'v3.6', '3.x', 'latest', ''])
      assert.equal(parseMicroversion(bad), undefined, bad);
    assert.throws(() => microversion('3.x'));
  });

  it('compares 3.60 above 3.6 and 3.100 above 3.60 (a float would not)', () => {
    const [v36, v360, v3100] = ['3.6', '3.60', '3.100'].map(microversion) as [
      ReturnType<typeof microversion>,
      ReturnType<typeof microversion>,
      ReturnType<typeof microversion>,
    ];
    assert.ok(compareMicroversions(v360, v36) > 0);
    assert.ok(compareMicroversions(v3100, v360) > 0);
    assert.ok(compareMicroversions(v3100, microversion('4.0')) < 0);
    assert.equal(compareMicroversions(v36, microversion('3.06')), 0);
    assert.ok(atLeast(v360, '3.6'));
    assert.ok(!atLeast(v36, '3.60'));
    assert.ok(atLeast(v3100, '3.99'));
    assert.ok(!atLeast(v360, v3100));
    assert.equal(formatMicroversion(v3100), '3.100');
  });
});

describe('MicroversionRange', () => {
  const compute = new MicroversionRange({
    service: 'compute',
    min: '2.1',
    max: '2.79',
    legacyHeader: 'X-OpenStack-Nova-API-Version',
    invalid: 'reject',
  });
  const volume = new MicroversionRange({ service: 'volume', min: '3.0', max: '3.60', invalid: 'ignore' });
  const v = (r: MicroversionRange, headers: Record<string, string>) => formatMicroversion(r.resolve(headers));

  it('serves the minimum without a header and the maximum for latest', () => {
    assert.equal(v(compute, {}), '2.1');
    assert.equal(v(volume, {}), '3.0');
    assert.equal(v(compute, { 'openstack-api-version': 'compute latest' }), '2.79');
    assert.equal(v(volume, { 'openstack-api-version': 'volume LATEST' }), '3.60');
  });

  it('reads its own service from OpenStack-API-Version, then the legacy header', () => {
    const both = { 'openstack-api-version': 'compute 2.47, volume 3.60' };
    assert.equal(v(compute, both), '2.47');
    assert.equal(v(volume, both), '3.60');
    assert.equal(v(volume, { 'openstack-api-version': 'Volume 3.6' }), '3.6');
    assert.equal(v(compute, { 'x-openstack-nova-api-version': '2.11' }), '2.11');
    assert.equal(
      v(compute, { 'openstack-api-version': 'compute 2.20', 'x-openstack-nova-api-version': '2.11' }),
      '2.20',
    );
    // Nova's legacy header says nothing to the volume API.
    assert.equal(v(volume, { 'x-openstack-nova-api-version': '3.5' }), '3.0');
  });

  it('answers 406 outside the range, 3.100 included', () => {
    assert.equal(
      status(() => volume.resolve({ 'openstack-api-version': 'volume 3.61' })),
      406,
    );
    assert.equal(
      status(() => volume.resolve({ 'openstack-api-version': 'volume 3.100' })),
      406,
    );
    assert.equal(
      status(() => volume.resolve({ 'openstack-api-version': 'volume 2.9' })),
      406,
    );
    assert.equal(
      status(() => volume.resolve({ 'openstack-api-version': 'volume 4.0' })),
      406,
    );
    assert.equal(
      status(() => compute.resolve({ 'openstack-api-version': 'compute 2.80' })),
      406,
    );
    assert.equal(
      status(() => compute.resolve({ 'openstack-api-version': 'compute 2.0' })),
      406,
    );
    assert.equal(
      status(() => volume.resolve({ 'openstack-api-version': 'volume 3.60' })),
      200,
    );
  });

  it('rejects a malformed version with 400, or serves the minimum when told to ignore it', () => {
    assert.equal(
      status(() => compute.resolve({ 'openstack-api-version': 'compute 2.x' })),
      400,
    );
    assert.equal(
      status(() => compute.resolve({ 'x-openstack-nova-api-version': 'two' })),
      400,
    );
    assert.equal(v(volume, { 'openstack-api-version': 'volume 3.x' }), '3.0');
  });

  it('names the version served in the answer', () => {
    const headers: Record<string, string> = {};
    const reply = { header: (k: string, val: string) => (headers[k] = val) };
    compute.negotiate({ headers: { 'openstack-api-version': 'compute 2.79' } } as never, reply as never);
    assert.deepEqual(headers, {
      'openstack-api-version': 'compute 2.79',
      'x-openstack-nova-api-version': '2.79',
      vary: 'OpenStack-API-Version, X-OpenStack-Nova-API-Version',
    });
  });
});
