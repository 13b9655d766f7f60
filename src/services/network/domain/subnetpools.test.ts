import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocate, checkInside, poolShape } from './subnetpools.ts';
import { cidrText, parseCidr } from './ip.ts';

const c = (s: string) => parseCidr(s)!;

test('poolShape normalises prefixes and defaults lengths', () => {
  const p = poolShape({ prefixes: ['10.11.12.0/24', '10.11.12.128/25'] });
  assert.equal(p.ipVersion, 4);
  assert.deepEqual(p.prefixes.map(cidrText), ['10.11.12.0/24']);
  assert.equal(p.minPrefixlen, 8);
  assert.equal(p.maxPrefixlen, 32);
  const q = poolShape({ prefixes: ['10.0.0.5/16'], min_prefixlen: 24, default_prefixlen: '26' });
  assert.deepEqual(q.prefixes.map(cidrText), ['10.0.0.0/16']);
  assert.equal(q.defaultPrefixlen, 26);
});

test('poolShape rejects bad input with BadRequest', () => {
  for (const bad of [
    { prefixes: [] },
    { prefixes: 'x' },
    { prefixes: ['10.0.0.0/33'] },
    { prefixes: ['10.0.0.0/8', '2001:db8::/32'] },
    { prefixes: ['10.0.0.0/8'], min_prefixlen: 28, max_prefixlen: 24 },
    { prefixes: ['10.0.0.0/8'], min_prefixlen: 24, default_prefixlen: 20 },
    { prefixes: ['10.0.0.0/8'], max_prefixlen: -1 },
  ]) {
    assert.throws(
      () => poolShape(bad),
      (e: Error) => e.constructor.name === 'BadRequest',
      JSON.stringify(bad),
    );
  }
});

test('allocate picks the lowest free block and skips used ones', () => {
  const p = poolShape({ prefixes: ['10.0.0.0/22'], min_prefixlen: 24, default_prefixlen: 24 });
  assert.equal(cidrText(allocate(p, [])!), '10.0.0.0/24');
  assert.equal(cidrText(allocate(p, [c('10.0.0.0/24'), c('10.0.1.0/25')])!), '10.0.2.0/24');
  assert.equal(cidrText(allocate(p, [c('10.0.0.0/24')], 26)!), '10.0.1.0/26');
  assert.equal(allocate(p, [c('10.0.0.0/22')]), undefined);
  assert.throws(() => allocate(p, [], 20));
});

test('allocate works for IPv6 and across several prefixes', () => {
  const p = poolShape({ prefixes: ['2001:db8:1::/64', '2001:db8:2::/63'], min_prefixlen: 64 });
  assert.equal(cidrText(allocate(p, [c('2001:db8:1::/64')])!), '2001:db8:2::/64');
});

test('checkInside accepts a cidr in the pool and rejects one outside', () => {
  const p = poolShape({ prefixes: ['10.0.0.0/16'], min_prefixlen: 24 });
  checkInside(p, c('10.0.5.0/24'));
  assert.throws(() => checkInside(p, c('10.1.0.0/24')));
  assert.throws(() => checkInside(p, c('10.0.0.0/20')));
});
