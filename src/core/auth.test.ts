/**
 * @module Application credential access rules as requests see them: the service from the URL's first
 * segment, the exact method, `*` one path segment and `**` any, regex characters in a rule's path
 * taken literally; no rules allow anything.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accessRulesAllow } from './auth.ts';

describe('accessRulesAllow', () => {
  const ips = [{ service: 'compute', method: 'GET', path: '/v2.1/servers/*/ips' }];

  it('allows anything without rules', () => {
    assert.equal(accessRulesAllow(undefined, 'DELETE', '/compute/v2.1/servers/x'), true);
    assert.equal(accessRulesAllow([], 'DELETE', '/compute/v2.1/servers/x'), true);
  });

  it('matches service, method and path, `*` being one segment', () => {
    assert.equal(accessRulesAllow(ips, 'GET', '/compute/v2.1/servers/abc/ips'), true);
    assert.equal(accessRulesAllow(ips, 'GET', '/compute/v2.1/servers/abc/ips?x=1'), true);
    assert.equal(accessRulesAllow(ips, 'GET', '/compute/v2.1/servers/abc/ips/'), true);
    assert.equal(accessRulesAllow(ips, 'GET', '/compute/v2.1/servers/a/b/ips'), false);
    assert.equal(accessRulesAllow(ips, 'GET', '/compute/v2.1/servers//ips'), false);
    assert.equal(accessRulesAllow(ips, 'HEAD', '/compute/v2.1/servers/abc/ips'), false);
    assert.equal(accessRulesAllow(ips, 'POST', '/compute/v2.1/servers/abc/ips'), false);
    assert.equal(accessRulesAllow(ips, 'GET', '/image/v2.1/servers/abc/ips'), false);
    assert.equal(accessRulesAllow(ips, 'GET', '/compute/v2.1/servers/abc/ips/extra'), false);
    assert.equal(accessRulesAllow(ips, 'GET', '/'), false);
  });

  it('takes `**` as any number of segments and names volume by its catalog types', () => {
    const any = [{ service: 'block-storage', method: 'GET', path: '/v3/**' }];
    assert.equal(accessRulesAllow(any, 'GET', '/volume/v3/p1/volumes/detail'), true);
    assert.equal(
      accessRulesAllow([{ ...any[0]!, service: 'volumev3' }], 'GET', '/volume/v3/p1/volumes'),
      true,
    );
    assert.equal(accessRulesAllow(any, 'GET', '/volume/v2/p1/volumes'), false);
    assert.equal(accessRulesAllow(any, 'GET', '/network/v3/x'), false);
  });

  it('reads regex characters in a rule path literally', () => {
    const dots = [{ service: 'image', method: 'GET', path: '/v2/images.(x)+' }];
    assert.equal(accessRulesAllow(dots, 'GET', '/image/v2/images.(x)+'), true);
    assert.equal(accessRulesAllow(dots, 'GET', '/image/v2/imagesA(x)'), false);
    assert.equal(accessRulesAllow(dots, 'GET', '/image/v2/images.xx'), false);
  });
});
