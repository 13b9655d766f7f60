/**
 * @module Unit tests of the shared pager and sort parameters: marker, limit and offset, the next
 * marker under both link rules, the per-service faults, and the sort terms of both spellings.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BadRequest, CloudError } from '../../core/errors.ts';
import { page, paginate, sortTerms } from './paging.ts';

const items = ['a', 'b', 'c', 'd', 'e'].map((id) => ({ id }));
const ids = (xs: { id: string }[]) => xs.map((x) => x.id).join('');
const idOf = (x: { id: string }) => x.id;
const status = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof CloudError);
    return `${e.status} ${e.message}`;
  }
  return 'ok';
};

describe('paginate', () => {
  it('starts after the marker and takes limit items, capped at maxLimit', () => {
    assert.equal(ids(paginate(items, { marker: 'b', limit: '2' }, idOf).items), 'cd');
    assert.equal(ids(paginate(items, { limit: '9' }, idOf, { maxLimit: 3 }).items), 'abc');
    assert.equal(ids(paginate(items, {}, idOf, { defaultLimit: 2 }).items), 'ab');
    assert.equal(paginate(items, {}, idOf, { defaultLimit: 2 }).limit, 2);
  });

  it('reads offset only when the service has it, and a marker overrides it', () => {
    assert.equal(ids(paginate(items, { offset: '3' }, idOf).items), 'abcde');
    assert.equal(ids(paginate(items, { offset: '3' }, idOf, { offset: true }).items), 'de');
    assert.equal(ids(paginate(items, { offset: '3', marker: 'a' }, idOf, { offset: true }).items), 'bcde');
  });

  it('gives the next marker when more remain, or after every asked-for full page', () => {
    assert.equal(paginate(items, { limit: '2' }, idOf).nextMarker, 'b');
    assert.equal(paginate(items, { marker: 'c', limit: '2' }, idOf).nextMarker, undefined);
    const cinder = { next: 'after-full-page' } as const;
    assert.equal(paginate(items, { marker: 'c', limit: '2' }, idOf, cinder).nextMarker, 'e');
    assert.equal(paginate(items, { marker: 'c', limit: '3' }, idOf, cinder).nextMarker, undefined);
    assert.equal(paginate(items, {}, idOf, { ...cinder, maxLimit: 5 }).nextMarker, undefined);
    assert.equal(paginate(items, {}, idOf, { ...cinder, maxLimit: 4 }).nextMarker, 'd');
    assert.equal(paginate(items, { limit: '0' }, idOf, cinder).nextMarker, undefined);
  });

  it("answers each service's faults for an unknown marker and a bad number", () => {
    assert.equal(
      status(() => paginate(items, { marker: 'z' }, idOf)),
      '404 Marker z could not be found.',
    );
    assert.equal(
      status(() => paginate(items, { limit: '-1' }, idOf)),
      '400 limit must be a non-negative integer.',
    );
    const glance = {
      unknownMarker: (m: string) => new BadRequest(`marker ${m} could not be found.`),
      badNumber: () => new BadRequest('limit param must be an integer'),
    };
    assert.equal(
      status(() => paginate(items, { marker: 'z' }, idOf, glance)),
      '400 marker z could not be found.',
    );
    assert.equal(
      status(() => paginate(items, { limit: 'x' }, idOf, glance)),
      '400 limit param must be an integer',
    );
    assert.equal(
      status(() => paginate(items, { offset: 'x' }, idOf, { offset: true })),
      '400 offset must be a non-negative integer.',
    );
  });

  it('page() is the plain Nova-style page', () => {
    assert.equal(ids(page(items, { marker: 'a', limit: '2' })), 'bc');
  });
});

describe('sortTerms', () => {
  it('reads sort=key:dir lists and sort_key/sort_dir pairs', () => {
    assert.deepEqual(sortTerms({ sort: 'name:asc, size' }), [
      ['name', 'asc'],
      ['size', 'desc'],
    ]);
    assert.deepEqual(sortTerms({ sort_key: 'name,size', sort_dir: 'asc' }), [
      ['name', 'asc'],
      ['size', 'asc'],
    ]);
    assert.deepEqual(sortTerms({ sort_key: 'name,size', sort_dir: 'asc,desc' }), [
      ['name', 'asc'],
      ['size', 'desc'],
    ]);
    assert.deepEqual(sortTerms({ sort: 'id', sort_key: 'name' }), [['id', 'desc']]);
  });

  it('names nothing without parameters unless given a default key', () => {
    assert.equal(sortTerms({}), undefined);
    assert.equal(sortTerms({ sort_dir: 'asc' }), undefined);
    assert.deepEqual(sortTerms({ sort_dir: 'asc' }, 'created_at'), [['created_at', 'asc']]);
  });
});
