/**
 * @module What fits in one fabric message, so that no change is ever unsendable (issue 11, class 3).
 * Two halves: every replicated row is capped where it is written (assertRowFits, called by
 * ChangeLog.put: a 413 at the API, nothing written), and pushes and pull replies are split by bytes
 * (splitChanges) so that each encoded message stays under the fabric's max payload (NATS's
 * `max_payload`, 1 MiB by default). A change already in a log that cannot fit in any message (written
 * by an older version, before the cap) is replaced by a stub its receivers reject, so the stream moves
 * past it instead of wedging; the sender logs and counts it.
 */
import { TooLarge } from '../core/errors.ts';
import type { Change, Row } from './changelog.ts';

/**
 * The most bytes one change may take as JSON text (`{"seq":…,"kind":…,"id":…,"op":"put","row":{…},
 * "at":…}`, measured with the largest seq and time), so the row's own JSON is a little less.
 *
 * Why 128 KiB: a change travels as one element of a batch body (the JSON text of Change[]), and that
 * body travels as a JSON string inside the envelope (ChangeBatch or PullReply). That last encoding is
 * the only one that grows the change's text: JSON.stringify never leaves a control character or a
 * lone surrogate raw, so the only characters of a JSON text that the envelope escapes are `"` and `\`,
 * one byte each becoming two; every other character keeps its UTF-8 length. (The escaping of the
 * user's own `"` inside the row — a property value, or a column that holds JSON text — is already in
 * the measured text.) So one change costs at most 2 x 128 KiB + 1 (its comma) = 256 KiB + 1 in a
 * message, plus the envelope's fixed fields (ENVELOPE_RESERVE): a quarter of NATS's default 1 MiB,
 * four times over for room. A row made only of `"` and `\` is the worst case
 * (src/federation/limits.test.ts).
 */
export const MAX_CHANGE_BYTES = 128 * 1024;

/** Bytes kept for the envelope's own fields: `v`, `origin` (a site name, at most 63 characters),
 * `head` (at most 16 digits), `sig` (an Ed25519 signature, 86 characters of base64url), the keys and
 * the quotes around `body`: under 300 bytes; 1 KiB leaves room for a field a later version adds. */
export const ENVELOPE_RESERVE = 1024;

/** The most bytes one change can take inside an envelope: its text escaped once more, and a comma. */
export const WORST_CHANGE_IN_ENVELOPE = 2 * MAX_CHANGE_BYTES + 1;

/** The most bytes a batch body may take once encoded in its envelope, for a fabric's max payload. */
export function messageBudget(maxPayload: number): number {
  return maxPayload - ENVELOPE_RESERVE;
}

/** Whether a fabric's max payload carries any capped change (false: some rows could be skipped). */
export function payloadFitsCap(maxPayload: number): boolean {
  return messageBudget(maxPayload) >= WORST_CHANGE_IN_ENVELOPE + 2;
}

const byteLength = (s: string) => Buffer.byteLength(s, 'utf8');

/** The size of a put of `row` as a logged change, with the largest seq and time it can carry. */
export function changeBytes(kind: string, row: Row): number {
  const max = Number.MAX_SAFE_INTEGER;
  return byteLength(JSON.stringify({ seq: max, kind, id: row.id, op: 'put', row, at: max }));
}

/** Throws 413 when the row is too big to replicate (see MAX_CHANGE_BYTES); writes nothing. */
export function assertRowFits(kind: string, row: Row): void {
  const size = changeBytes(kind, row);
  if (size > MAX_CHANGE_BYTES)
    throw new TooLarge(
      `The ${kind} is too large: ${size} bytes of JSON, over the limit of ${MAX_CHANGE_BYTES} bytes for one replicated resource.`,
    );
}

/** One message's worth of changes; `body` is their JSON text (exactly JSON.stringify(changes)). */
export interface ChangeChunk {
  body: string;
  changes: Change[];
}

export interface SplitChanges {
  chunks: ChangeChunk[];
  /** Changes too large for any message; each was replaced by a stub (see stubOf) in its chunk. */
  oversized: Change[];
}

/**
 * What receivers get instead of a change that fits in no message: the same seq (so their cursor moves
 * past it), no row, which every receiver rejects as malformed and logs, keeping the row's last state.
 */
export function stubOf(c: Change): Change {
  return {
    seq: c.seq,
    kind: String(c.kind).slice(0, 64),
    id: String(c.id).slice(0, 255),
    op: 'put',
    row: null,
    at: c.at,
  };
}

/** Bytes `text` takes once encoded as a JSON string, without its two quotes. */
const escapedBytes = (text: string) => byteLength(JSON.stringify(text)) - 2;

/**
 * Splits `changes` (in log order) into runs whose body, encoded as a JSON string, takes at most
 * `budget` bytes (see messageBudget). Every run holds at least one change; a change that would not
 * fit even alone is replaced by its stub.
 */
export function splitChanges(changes: readonly Change[], budget: number): SplitChanges {
  const out: SplitChanges = { chunks: [], oversized: [] };
  let pieces: string[] = [];
  let run: Change[] = [];
  let size = 2; // the brackets
  const close = () => {
    if (run.length === 0) return;
    out.chunks.push({ body: `[${pieces.join(',')}]`, changes: run });
    pieces = [];
    run = [];
    size = 2;
  };
  for (const original of changes) {
    let c = original;
    let piece = JSON.stringify(c);
    let cost = escapedBytes(piece) + 1; // the comma before it (one too many for the first: harmless)
    if (cost + 2 > budget) {
      out.oversized.push(c);
      c = stubOf(c);
      piece = JSON.stringify(c);
      cost = escapedBytes(piece) + 1;
    }
    if (size + cost > budget) close();
    pieces.push(piece);
    run.push(c);
    size += cost;
  }
  close();
  return out;
}
