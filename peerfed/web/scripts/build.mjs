// Build the web client into ../dist (served by the node at /, spec §13.10): one esbuild bundle from
// src/app/main.js plus the page and its style sheet, copied as they are. The output depends only on
// the sources and the lockfile (no timestamps, no absolute paths), so CI rebuilds it and compares.

import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { toHex, webClientHash } from '../src/protocol/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'assets'), { recursive: true });
// The page, and the proof-of-work worker it starts (a separate file: the CSP allows only 'self').
for (const [entry, out] of [['src/app/main.js', 'app.js'], ['src/app/work_worker.js', 'work.js']]) await build({
  absWorkingDir: root,
  entryPoints: [entry],
  outfile: join(dist, 'assets', out),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: false,
  legalComments: 'eof',
  charset: 'utf8',
  logLevel: 'warning',
});
copyFileSync(join(root, 'src', 'app', 'index.html'), join(dist, 'index.html'));
for (const name of ['app.css', 'icon.svg']) copyFileSync(join(root, 'src', 'app', name), join(dist, 'assets', name));

// The hash a node publishes for these files (spec §13.10): release notes quote this line.
const served = new Map([['index.html', readFileSync(join(dist, 'index.html'))]]);
for (const name of readdirSync(join(dist, 'assets'))) served.set(`assets/${name}`, readFileSync(join(dist, 'assets', name)));
console.log(`web client hash (sha256 manifest, spec §13.10): ${toHex(webClientHash(served))}`);
