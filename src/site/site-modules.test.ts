/**
 * @module createSite holds modules to what they declare: an api provided or used without being declared,
 * or declared and never provided, stops the site at start-up naming the module and the api; declared
 * ones reach their users typed, providers first whatever the given order.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../core/ports.ts';
import { MemoryNetwork } from '../fabric/memory/network.ts';
import type { ServiceModule } from '../services/common/module.ts';
import { defineApi } from '../services/common/module.ts';
import { createSite } from './site.ts';

const Greeter = defineApi<{ greet(): string }>('greeter');

const base = (name: string): ServiceModule => ({
  name,
  migrations: [],
  kinds: [],
  catalog: [],
  register() {},
});

const start = (modules: ServiceModule[]) =>
  createSite(
    { name: 'site-a', logLevel: 'silent' },
    { fabric: new MemoryNetwork(systemClock).connect('site-a'), modules, holdReplication: true },
  );

describe('createSite and module declarations', () => {
  it('registers a provider before its user and hands the user the typed api', async () => {
    const heard: string[] = [];
    const user: ServiceModule = {
      ...base('user'),
      requires: [Greeter],
      register(_app, ctx) {
        heard.push(ctx.use(Greeter).greet());
      },
    };
    const provider: ServiceModule = {
      ...base('provider'),
      provides: [Greeter],
      register(_app, ctx) {
        ctx.provide(Greeter, { greet: () => 'hello' });
      },
    };
    const site = await start([user, provider]);
    try {
      assert.deepEqual(heard, ['hello']);
      assert.deepEqual(
        site.modules.map((m) => m.name),
        ['provider', 'user'],
      );
    } finally {
      await site.close();
    }
  });

  it('refuses an api used without being required', async () => {
    const provider: ServiceModule = {
      ...base('provider'),
      provides: [Greeter],
      register: (_app, ctx) => ctx.provide(Greeter, { greet: () => 'hi' }),
    };
    const sneaky: ServiceModule = { ...base('sneaky'), register: (_app, ctx) => void ctx.use(Greeter) };
    await assert.rejects(
      start([provider, sneaky]),
      /module sneaky uses the greeter api without declaring it/,
    );
  });

  it('refuses an api provided without being declared, and one declared but never provided', async () => {
    const undeclared: ServiceModule = {
      ...base('undeclared'),
      register: (_app, ctx) => ctx.provide(Greeter, { greet: () => 'hi' }),
    };
    await assert.rejects(
      start([undeclared]),
      /module undeclared provides the greeter api without declaring it/,
    );
    const idle: ServiceModule = { ...base('idle'), provides: [Greeter] };
    await assert.rejects(start([idle]), /module idle declares the greeter api but did not provide it/);
  });

  it('refuses a required api nothing provides', async () => {
    const user: ServiceModule = { ...base('user'), requires: [Greeter] };
    await assert.rejects(start([user]), /module user requires the greeter api, which no module provides/);
  });
});
