/**
 * @module The lint config holds the architecture's boundaries: each rule fires on a deliberate
 * violation and stays quiet on the allowed variant. Code is linted as if it lived at a given path
 * (nothing is written; no such file is in the TypeScript project, so type-aware rules, none of them a
 * boundary rule, are off here); the cycle uses the fixture files under test/fixtures/lint/, which the
 * main lint run ignores.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('lint config: boundaries', () => {
  let eslint: ESLint;
  before(() => {
    eslint = new ESLint({
      cwd: root,
      overrideConfig: [{ ...tseslint.configs.disableTypeChecked, files: ['**/*.ts'] }],
    });
  });

  /** The rule ids reported for `code` linted as the file at `filePath`. */
  const rulesFor = async (filePath: string, code: string): Promise<string[]> => {
    const [res] = await eslint.lintText(code, { filePath: join(root, filePath) });
    assert.ok(res, 'no lint result');
    return res.messages.map((m) => m.ruleId ?? `fatal: ${m.message}`);
  };

  it('services must not import site/ or cli/', async () => {
    const code = (from: string) => `import { x } from '${from}';\nexport const y = x;\n`;
    assert.deepEqual(await rulesFor('src/services/x/api/y.ts', code('../../../site/config.ts')), [
      'no-restricted-imports',
    ]);
    assert.deepEqual(await rulesFor('src/services/x/index.ts', code('../../cli/main.ts')), [
      'no-restricted-imports',
    ]);
    assert.deepEqual(await rulesFor('src/services/x/api/y.ts', code('../../common/module.ts')), []);
    // The site may import services: the dependency points one way.
    assert.deepEqual(await rulesFor('src/site/y.ts', code('../services/common/module.ts')), []);
  });

  it('core/ and domain/ must not do I/O (fs, child_process, SQLite, Fastify, NATS)', async () => {
    const code = (from: string) => `import * as m from '${from}';\nexport const y = m;\n`;
    for (const mod of [
      'node:fs',
      'node:fs/promises',
      'node:child_process',
      'better-sqlite3',
      'fastify',
      'nats',
    ]) {
      assert.deepEqual(
        await rulesFor('src/services/x/domain/y.ts', code(mod)),
        ['no-restricted-imports'],
        mod,
      );
      assert.deepEqual(await rulesFor('src/core/y.ts', code(mod)), ['no-restricted-imports'], mod);
    }
    // domain/ keeps the services/ -> site/ ban too (its rule block replaces the services one).
    assert.deepEqual(await rulesFor('src/services/x/domain/y.ts', code('../../../site/site.ts')), [
      'no-restricted-imports',
    ]);
    assert.deepEqual(await rulesFor('src/services/x/backend/y.ts', code('node:fs')), []);
    assert.deepEqual(await rulesFor('src/services/x/domain/y.ts', code('node:path')), []);
  });

  it('SQL only in store/', async () => {
    const literal = "export const q = 'SELECT id FROM t WHERE id = ?';\n";
    const template = 'export const q = (c: string) => `\n  UPDATE t SET ${c} = ? WHERE id = ?`;\n';
    assert.deepEqual(await rulesFor('src/services/x/api/y.ts', literal), ['no-restricted-syntax']);
    assert.deepEqual(await rulesFor('src/services/x/domain/y.ts', template), ['no-restricted-syntax']);
    assert.deepEqual(await rulesFor('src/federation/y.ts', literal), ['no-restricted-syntax']);
    assert.deepEqual(await rulesFor('src/services/x/store/y.ts', literal), []);
    assert.deepEqual(await rulesFor('src/store/y.ts', template), []);
    // Words that are also SQL keywords are not SQL.
    const words = "export const w = ['delete', 'Delete the volume first.', 'update', `with ${1} port`];\n";
    assert.deepEqual(await rulesFor('src/services/x/api/y.ts', words), []);
  });

  it('every file on the SQL override list still holds SQL (shrink the list as it moves to store/)', async () => {
    const cfg = (await import(pathToFileURL(join(root, 'eslint.config.js')).href)) as {
      FILES_WITH_SQL_OUTSIDE_STORE: readonly string[];
    };
    const sql = /['"`]\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|WITH|PRAGMA)\s/;
    const stale = cfg.FILES_WITH_SQL_OUTSIDE_STORE.filter((f) => {
      try {
        return !sql.test(readFileSync(join(root, f), 'utf8'));
      } catch {
        return true;
      }
    });
    assert.deepEqual(stale, [], 'remove these from FILES_WITH_SQL_OUTSIDE_STORE in eslint.config.js');
  });

  it('an import cycle is an error; a one-way import or a type-only import back is not', async () => {
    const unignored = new ESLint({ cwd: root, ignore: false });
    const lint = async (dir: string) =>
      (await unignored.lintFiles([join(root, 'test/fixtures/lint', dir)])).flatMap((r) =>
        r.messages.map((m) => m.ruleId),
      );
    assert.deepEqual(await lint('cycle'), ['import-x/no-cycle', 'import-x/no-cycle']);
    assert.deepEqual(await lint('no-cycle'), []);
    // The cycle this lint missed for lack of settings: the admin API importing the site that mounts it.
    const [res] = await unignored.lintText(
      "import { createSite } from './site.ts';\nexport const c = createSite;\n",
      {
        filePath: join(root, 'src/site/admin-api.ts'),
      },
    );
    assert.deepEqual(
      res?.messages.map((m) => m.ruleId),
      ['import-x/no-cycle'],
    );
  });
});
