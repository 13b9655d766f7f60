/**
 * @module Unit tests of the row cap and of splitting by bytes: a row at the cap, even one made only
 * of `"` and `\`, fits in one message with its envelope; one byte more is a 413; every run of a split
 * stays under the budget, holds at least one change, keeps log order, and a change too large for any
 * message becomes a stub.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MAX_PAYLOAD, encodeJson } from '../fabric/fabric.ts';
import { CloudError } from '../core/errors.ts';
import type { Change, Row } from './changelog.ts';
import type { ChangeBatch } from './replicator.ts';
import {
  ENVELOPE_RESERVE,
  MAX_CHANGE_BYTES,
  WORST_CHANGE_IN_ENVELOPE,
  assertRowFits,
  changeBytes,
  messageBudget,
  splitChanges,
} from './limits.ts';

/** An envelope as large as its fields can be: a 63-character origin and a real signature's length. */
function envelopeBytes(body: string): number {
  const batch: ChangeBatch & { head: number } = {
    v: 1,
    origin: 'o'.repeat(63),
    head: Number.MAX_SAFE_INTEGER,
    body,
    sig: 's'.repeat(86),
  };
  return encodeJson(batch).byteLength;
}

const change = (seq: number, row: Row): Change => ({
  seq,
  kind: 'image',
  id: row.id,
  op: 'put',
  row,
  at: Number.MAX_SAFE_INTEGER,
});

/** The largest row with `fill` repeated in one property that still passes the cap. */
function largestRow(fill: string): Row {
  const base = { id: 'f'.repeat(36), owner: 'o'.repeat(63), properties: '' };
  let lo = 0;
  let hi = MAX_CHANGE_BYTES;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (changeBytes('image', { ...base, properties: fill.repeat(mid) }) <= MAX_CHANGE_BYTES) lo = mid;
    else hi = mid - 1;
  }
  return { ...base, properties: fill.repeat(lo) };
}

/** Characters that cost the most at some step: quotes, backslashes, control characters, emoji. */
const NASTY = ['"', '\\', '\u0000', '\n', '\u2028', '\ud83d\ude00', '\ud800', 'é', 'a'];

describe('row cap', () => {
  it('fits a row at the cap, made only of " and \\, in one message under 1 MiB with its envelope', () => {
    for (const fill of ['"', '\\', '"\\']) {
      const row = largestRow(fill);
      assert.doesNotThrow(() => assertRowFits('image', row));
      const { chunks } = splitChanges([change(1, row)], messageBudget(DEFAULT_MAX_PAYLOAD));
      assert.equal(chunks.length, 1);
      const size = envelopeBytes(chunks[0]!.body);
      // The worst case the cap was derived from is reached (within a few bytes), and holds.
      assert.ok(size > 2 * MAX_CHANGE_BYTES - 64, `${fill}: ${size} bytes is near the worst case`);
      assert.ok(size <= WORST_CHANGE_IN_ENVELOPE + ENVELOPE_RESERVE, `${fill}: ${size} bytes`);
      assert.ok(size <= DEFAULT_MAX_PAYLOAD / 2, `${fill}: ${size} bytes leaves room`);
    }
  });

  it('refuses one character more with a 413, whatever the characters', () => {
    for (const fill of NASTY) {
      const row = largestRow(fill);
      const over = { ...row, properties: `${String(row.properties)}${fill}` };
      assert.throws(
        () => assertRowFits('image', over),
        (e: unknown) => e instanceof CloudError && e.status === 413,
        JSON.stringify(fill),
      );
    }
  });

  it('never lets a capped change take more than twice its size in a message (random rows)', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let i = 0; i < 200; i++) {
      const parts = Array.from({ length: 1 + rand(2000) }, () => NASTY[rand(NASTY.length)]!);
      const nested = JSON.stringify({ k: parts.join('') }); // a column holding JSON text
      const row: Row = { id: `r${i}`, name: parts.join(''), properties: nested, meta: { v: parts.join('') } };
      const c = change(i + 1, row);
      const { chunks } = splitChanges([c], messageBudget(DEFAULT_MAX_PAYLOAD));
      const inMessage = envelopeBytes(chunks[0]!.body) - envelopeBytes('[]');
      assert.ok(inMessage <= 2 * changeBytes('image', row), `row ${i}: ${inMessage} bytes`);
    }
  });
});

describe('splitting by bytes', () => {
  const rows = (n: number, size: number) =>
    Array.from({ length: n }, (_, i) =>
      change(i + 1, { id: `r${i}`, pad: '"'.repeat(size + ((i * 997) % size)) }),
    );

  it('keeps every message under the budget, in log order, each with at least one change', () => {
    const changes = rows(60, 15_000);
    for (const maxPayload of [DEFAULT_MAX_PAYLOAD, 300_000, 150_000]) {
      const { chunks, oversized } = splitChanges(changes, messageBudget(maxPayload));
      assert.equal(oversized.length, 0);
      assert.ok(chunks.length > 1, 'the whole run would not fit in one message');
      for (const ch of chunks) {
        assert.ok(ch.changes.length >= 1);
        assert.equal(ch.body, JSON.stringify(ch.changes));
        assert.ok(envelopeBytes(ch.body) <= maxPayload, `${envelopeBytes(ch.body)} > ${maxPayload}`);
      }
      assert.deepEqual(
        chunks.flatMap((ch) => ch.changes.map((c) => c.seq)),
        changes.map((c) => c.seq),
      );
    }
  });

  it('sends small changes together and nothing for nothing', () => {
    assert.deepEqual(splitChanges([], 1000).chunks, []);
    const { chunks } = splitChanges(rows(10, 10), messageBudget(DEFAULT_MAX_PAYLOAD));
    assert.equal(chunks.length, 1);
    assert.equal(chunks[0]!.changes.length, 10);
  });

  it('replaces a change too large for any message by a stub with its seq and no row', () => {
    const big = change(2, { id: 'big', pad: '"'.repeat(600_000) });
    const changes = [change(1, { id: 'a' }), big, change(3, { id: 'b' })];
    const { chunks, oversized } = splitChanges(changes, messageBudget(DEFAULT_MAX_PAYLOAD));
    assert.deepEqual(
      oversized.map((c) => c.seq),
      [2],
    );
    const sent = chunks.flatMap((ch) => ch.changes);
    assert.deepEqual(
      sent.map((c) => [c.seq, c.id, c.row === null]),
      [
        [1, 'a', false],
        [2, 'big', true],
        [3, 'b', false],
      ],
    );
    for (const ch of chunks) assert.ok(envelopeBytes(ch.body) <= DEFAULT_MAX_PAYLOAD);
  });
});
