/** @module The linear matcher agrees with RegExp on the subset it accepts, refuses the rest, and stays fast. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { linearRegex, MAX_PATTERN, RegexRefused } from './linear-regex.ts';
import { seededRandom } from './random.ts';

describe('linearRegex', () => {
  const texts = ['', 'a', 'ab', 'abc', 'web-1', 'web-10', 'db.2', 'x\ny', 'aaa', 'ba', 'A_b 9', '[x]'];
  const patterns = [
    '',
    'a',
    '^a',
    'a$',
    '^$',
    'web',
    '^web-\\d+$',
    'db\\.',
    '.',
    '^.$',
    'a|b',
    '^(a|b)+$',
    '(?:ab)?c',
    'a*',
    'a+?',
    '[a-c]+',
    '[^a]',
    '^[\\w-]+$',
    '\\s',
    '\\S+',
    '\\[x\\]',
    '[a-]',
    'x.y',
    '(a*)*b',
    '^(a+)+$',
    'b|^a',
    '(^a|b$)',
  ];
  it('agrees with RegExp on the supported subset', () => {
    for (const p of patterns) {
      const re = new RegExp(p);
      const lin = linearRegex(p);
      for (const t of texts) assert.equal(lin.test(t), re.test(t), `${p} on ${JSON.stringify(t)}`);
    }
  });
  it('agrees with RegExp on random patterns', () => {
    const rnd = seededRandom(11);
    const atoms = ['a', 'b', '.', '[ab]', '[^a]', '(a|b)', '(?:ab)', '^', '$', '\\d'];
    const quants = ['', '', '*', '+', '?'];
    for (let n = 0; n < 2000; n++) {
      let p = '';
      const len = 1 + Math.floor(rnd() * 5);
      for (let i = 0; i < len; i++) {
        const a = atoms[Math.floor(rnd() * atoms.length)]!;
        p += a + (a === '^' || a === '$' ? '' : quants[Math.floor(rnd() * quants.length)]!);
        if (rnd() < 0.1) p += '|';
      }
      const t = Array.from({ length: Math.floor(rnd() * 6) }, () => 'ab1'[Math.floor(rnd() * 3)]).join('');
      assert.equal(linearRegex(p).test(t), new RegExp(p).test(t), `${p} on ${t}`);
    }
  });
  it('refuses what it does not support', () => {
    for (const p of [
      'a{2}',
      '(?=a)',
      '(a',
      'a)',
      '[a',
      '[]a]',
      '\\1',
      '*a',
      'a**',
      '\\',
      'x'.repeat(MAX_PATTERN + 1),
    ])
      assert.throws(() => linearRegex(p), RegexRefused, p);
  });
  it('is linear on patterns that make RegExp backtrack', () => {
    const t0 = performance.now();
    for (const p of ['^(a+)+$', '^(a|a)*$', '^(a*)*b$', '^(.*a)+$'])
      assert.equal(linearRegex(p).test('a'.repeat(5000) + '!'), false);
    assert.ok(performance.now() - t0 < 1000);
  });
});
