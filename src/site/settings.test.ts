/**
 * @module Unit tests of start-up settings: nonsense stops the site with every problem named.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { defaultSiteConfig } from './site.ts';
import { checkSettings } from './settings.ts';

const site = (over: Record<string, unknown>) => ({ ...defaultSiteConfig, name: 'site-a', ...over }) as never;

describe('settings', () => {
  it('accepts the defaults', () => {
    checkSettings(site({}));
  });

  it('refuses a heartbeat of abc or 0 (which flooded the fabric), naming each bad setting', () => {
    assert.throws(() => checkSettings(site({ heartbeatMs: Number('abc') })), /heartbeatMs .* not null/);
    assert.throws(() => checkSettings(site({ heartbeatMs: 0 })), /heartbeatMs .*from 10 to 60000, not 0/);
    assert.throws(
      () => checkSettings(site({ port: 70000, trust: 'lax' })),
      (e: Error) => /port/.test(e.message) && /trust must be one of open, admitted/.test(e.message),
    );
  });

  it('refuses a peer timeout shorter than two heartbeats', () => {
    assert.throws(() => checkSettings(site({ heartbeatMs: 1000, downAfterMs: 1500 })), /at least twice/);
  });
});
