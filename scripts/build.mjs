#!/usr/bin/env node
// Bundles the TypeScript sources into dist/atoll.mjs (packages stay external), so a site starts
// without the TypeScript loader: faster start-up and about 35 MB less memory per process.
// bin/atoll uses the bundle when it is newer than every source file, and the sources otherwise.
import { build } from 'esbuild';
await build({
  entryPoints: ['src/cli/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  outfile: 'dist/atoll.mjs',
  sourcemap: 'linked',
  logLevel: 'warning',
});
