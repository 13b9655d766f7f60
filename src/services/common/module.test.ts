/**
 * @module Unit tests of the module order: providers register before their users, unconstrained modules
 * keep their order, and a missing provider, a second provider or a cycle is refused by name.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ApiToken, ServiceModule } from './module.ts';
import { defineApi, orderModules } from './module.ts';

const A = defineApi<{ a(): number }>('a');
const B = defineApi<{ b(): string }>('b');

const mod = (
  name: string,
  provides: ApiToken<any>[] = [],
  requires: ApiToken<any>[] = [],
): ServiceModule => ({
  name,
  migrations: [],
  kinds: [],
  catalog: [],
  provides,
  requires,
  register() {},
});

const names = (ms: readonly ServiceModule[]) => ms.map((m) => m.name);

describe('orderModules', () => {
  it('puts every provider before the modules that require its api', () => {
    const order = orderModules([mod('user', [], [A, B]), mod('pa', [A], [B]), mod('pb', [B])]);
    assert.deepEqual(names(order), ['pb', 'pa', 'user']);
  });

  it('keeps the given order where nothing constrains it', () => {
    const order = orderModules([mod('x'), mod('pa', [A]), mod('y', [], [A]), mod('z')]);
    assert.deepEqual(names(order), ['x', 'pa', 'y', 'z']);
  });

  it('names the module and the api when no module provides it', () => {
    assert.throws(
      () => orderModules([mod('user', [], [A])]),
      /module user requires the a api, which no module provides/,
    );
  });

  it('refuses two providers of one api', () => {
    assert.throws(() => orderModules([mod('p1', [A]), mod('p2', [A])]), /p1 and p2 both provide the a api/);
  });

  it('refuses a cycle, naming its modules', () => {
    assert.throws(
      () => orderModules([mod('m1', [A], [B]), mod('m2', [B], [A])]),
      /require each other in a cycle: m1 -> m2 -> m1/,
    );
  });
});
