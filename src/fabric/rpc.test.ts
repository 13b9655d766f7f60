/**
 * @module defineRpc on the in-process fabric: what the envelope carries beyond the conformance suite
 * (test/fabric-conformance.test.ts runs the shared cases over both fabrics).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloudError, SiteUnavailable, TooLarge } from '../core/errors.ts';
import { systemClock } from '../core/ports.ts';
import { decodeJson, encodeJson } from './fabric.ts';
import { MemoryNetwork } from './memory/network.ts';
import { RemoteCloudError, RpcErrorCode, defineRpc } from './rpc.ts';
import type { RpcReply } from './rpc.ts';

const pair = (opts: { maxPayload?: number } = {}) => {
  const net = new MemoryNetwork(systemClock, opts);
  return { a: net.connect('site-a'), b: net.connect('site-b') };
};

describe('defineRpc', () => {
  it('seals the request with its version, and the handler sees what was sealed', async () => {
    const { a, b } = pair();
    const rpc = defineRpc<{ from: string; sig?: string }, string>({ name: 'sealed', version: 3 });
    rpc.serve(b, (req) => `${req.from} v${req.v} ${req.sig ?? 'unsigned'}`);
    const seal = (m: { v: number; sig?: string }) => (m.sig = `over v${m.v}`);
    const out = await rpc.call(a, 'site-b', { from: 'site-a' }, { timeoutMs: 1000, seal });
    assert.equal(out, 'site-a v3 over v3');
  });

  it("keeps a CloudError's status, message, retryable and detail type, and names the site", async () => {
    const { a, b } = pair();
    const rpc = defineRpc<object, never>({ name: 'fail', version: 1 });
    rpc.serve(b, () => {
      throw new CloudError(409, 'No more IP addresses.', {
        retryable: true,
        detailType: 'IpAddressGenerationFailure',
      });
    });
    await assert.rejects(rpc.call(a, 'site-b', {}, { timeoutMs: 1000 }), (e: unknown) => {
      assert.ok(e instanceof RemoteCloudError);
      assert.deepEqual(
        [e.status, e.message, e.retryable, e.detailType, e.site, e.code],
        [409, 'No more IP addresses.', true, 'IpAddressGenerationFailure', 'site-b', RpcErrorCode.Cloud],
      );
      return true;
    });
  });

  it('answers a request that is not a JSON object with a malformed error, and a bug through `internal`', async () => {
    const { a, b } = pair();
    const rpc = defineRpc<{ x?: number }, number>({ name: 'odd', version: 1 });
    rpc.serve(
      b,
      () => {
        throw new Error('bug');
      },
      { internal: (e) => new CloudError(500, `wrapped ${(e as Error).message}`) },
    );
    const raw = decodeJson<RpcReply<number>>(await a.request(rpc.subject('site-b'), encodeJson([1]), 1000));
    assert.equal(raw.ok, false);
    if (!raw.ok)
      assert.deepEqual([raw.v, raw.error.code, raw.error.status], [1, RpcErrorCode.Malformed, 400]);
    await assert.rejects(rpc.call(a, 'site-b', {}, { timeoutMs: 1000 }), /wrapped bug/);
  });

  it('refuses a request over the max payload before sending it, and counts only what was sent', async () => {
    const { a, b } = pair({ maxPayload: 200 });
    const rpc = defineRpc<{ pad: string }, string>({ name: 'big', version: 1 });
    rpc.serve(b, () => 'ok');
    let sent = 0;
    const opts = { timeoutMs: 1000, sent: () => void sent++ };
    await assert.rejects(rpc.call(a, 'site-b', { pad: 'x'.repeat(500) }, opts), TooLarge);
    assert.equal(sent, 0);
    assert.equal(await rpc.call(a, 'site-b', { pad: 'x' }, opts), 'ok');
    assert.equal(sent, 1);
    await assert.rejects(rpc.call(a, 'site-c', { pad: 'x' }, opts), (e: unknown) => {
      assert.ok(e instanceof SiteUnavailable);
      assert.equal(e.message, 'Site site-c is unreachable: big request no_responders');
      return true;
    });
  });
});
