// @module Lint rules: type-aware promise checks and the architecture's boundaries (docs/architecture.md):
// no import cycles, services never reach up into site/ or cli/, core/ and domain/ do no I/O, SQL only in
// store/. test/lint-config.test.ts proves each boundary rule fires on a violation.
import tseslint from 'typescript-eslint';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';

/**
 * Files outside a store/ folder that still hold SQL today. Each is a debt: move its SQL into its
 * service's store/ (or src/store/) and delete it from this list. Nothing may be added to it.
 */
export const FILES_WITH_SQL_OUTSIDE_STORE = [
  'src/federation/changelog.ts',
  'src/federation/membership.ts',
  'src/federation/origin.ts',
  'src/federation/registry.ts',
  'src/federation/unique.ts',
  'src/services/network/leases.ts',
  'src/site/admin-api.ts',
];

/** A string or template that starts like an SQL statement (upper case, as all of Atoll's SQL is). */
const SQL_START = '^\\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|WITH|PRAGMA)\\s';
const SQL_MESSAGE = 'SQL belongs in a store/ folder (a repository of the service), not here.';
const noSqlOutsideStore = [
  'error',
  { selector: `Literal[value=/${SQL_START}/]`, message: SQL_MESSAGE },
  {
    selector: `TemplateLiteral > TemplateElement:first-child[value.raw=/${SQL_START}/]`,
    message: SQL_MESSAGE,
  },
];

/** Imports that mean I/O: core/ and domain/ see ports (interfaces) only. */
const IO_MODULES = [
  'node:fs',
  'node:fs/promises',
  'fs',
  'fs/promises',
  'node:child_process',
  'child_process',
  'better-sqlite3',
  'fastify',
  'nats',
].map((name) => ({ name, message: 'core/ and domain/ do no I/O: take a port (an interface) instead.' }));

/** services/ never import the site that wires them, nor the CLI (services/common/module.ts is the contract). */
const NO_SITE_OR_CLI = {
  regex: '(^|/)(site|cli)/',
  message: 'services/ (and core/) must not import site/ or cli/: use services/common/module.ts.',
};

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'dist/**',
      'bench/results/**',
      'eslint.config.js',
      // Deliberate violations for test/lint-config.test.ts, linted only there.
      'test/fixtures/lint/**',
    ],
  },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    settings: {
      // Without these, import-x parses nothing and resolves nothing on .ts files: no-cycle saw no edges.
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/external-module-folders': ['node_modules', 'node_modules/@types'],
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.mjs', '.json'] })],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Type-only imports are erased and are not edges (import-x skips `import type`).
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  {
    files: ['src/services/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [NO_SITE_OR_CLI] }] },
  },
  {
    // Later blocks replace a rule's options rather than merge them: this one repeats the site/cli ban.
    files: ['src/core/**/*.ts', 'src/**/domain/**/*.ts'],
    // A test beside the code may read files (e.g. the source tree it checks).
    ignores: ['src/**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: IO_MODULES, patterns: [NO_SITE_OR_CLI] }] },
  },
  {
    // Tests may read the database to check what a route wrote.
    files: ['src/**/*.ts'],
    ignores: ['src/store/**', 'src/**/store/**', 'src/**/*.test.ts', ...FILES_WITH_SQL_OUTSIDE_STORE],
    rules: { 'no-restricted-syntax': noSqlOutsideStore },
  },
);
