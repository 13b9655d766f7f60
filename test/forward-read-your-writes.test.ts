/**
 * @module A write forwarded to its owner is seen at once by the site that forwarded it: the answer
 * waits until that site has replicated the owner's log up to the write (over a WAN link of 40 ms each
 * way, and with the owner's changes held back 300 ms: without the wait, the read is a 404). The owner's answer names the endpoint the client used (links), and its log head never
 * reaches the client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { httpAt } from './support/http.ts';

describe('forwarded writes: invisible to the client of the forwarding site', () => {
  let cloud: LocalCloud;
  let token: string;
  before(async () => {
    cloud = await startLocalCloud({ sites: 2, latencyMs: 40 });
    token = await cloud.adminToken(1);
  });
  after(async () => cloud?.close());

  it('waits for replication slower than the answer', async () => {
    // Changes from site-a reach site-b 300 ms late (the forwarded answer does not).
    const net = cloud.fed.network;
    const send = net.send.bind(net);
    net.send = (from, to, subject, size, deliver) =>
      send(from, to, subject, size, () =>
        from === 'site-a' && to === 'site-b' && !subject.includes('.rpc.')
          ? void setTimeout(deliver, 300)
          : deliver(),
      );
    try {
      const b = httpAt(cloud.url(1));
      const r = await b('POST', '/identity/v3/users', token, {
        user: { name: 'ryw-slow', password: 'pw-ryw' },
      });
      assert.equal(r.status, 201);
      assert.equal((await b('GET', `/identity/v3/users/${r.body.user.id}`, token)).status, 200);
    } finally {
      net.send = send;
    }
  });

  it('creates at the non-owner site and reads the row back there at once', async () => {
    const b = httpAt(cloud.url(1));
    for (let i = 0; i < 5; i++) {
      // Users of the Default domain belong to site-a: the create is forwarded there.
      const res = await fetch(`${cloud.url(1)}/identity/v3/users`, {
        method: 'POST',
        headers: { 'x-auth-token': token, 'content-type': 'application/json' },
        body: JSON.stringify({ user: { name: `ryw-${i}`, password: 'pw-ryw' } }),
      });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('x-atoll-owner'), 'site-a');
      assert.equal(res.headers.get('x-atoll-log-head'), null);
      const { user } = (await res.json()) as { user: { id: string; links: { self: string } } };
      const id = user.id;
      // The owner answers as the site the client used: links name that site's endpoint.
      assert.equal(user.links.self, `${cloud.url(1)}/identity/v3/users/${id}`);
      assert.equal((await b('GET', `/identity/v3/users/${id}`, token)).status, 200);
      assert.equal(
        (await b('PATCH', `/identity/v3/users/${id}`, token, { user: { description: 'd' } })).status,
        200,
      );
      assert.equal((await b('GET', `/identity/v3/users/${id}`, token)).body.user.description, 'd');
      assert.equal((await b('DELETE', `/identity/v3/users/${id}`, token)).status, 204);
      assert.equal((await b('GET', `/identity/v3/users/${id}`, token)).status, 404);
    }
  });
});
