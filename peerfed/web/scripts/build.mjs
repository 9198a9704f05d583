// Build the web client into ../dist (served by the node at /, spec §13.10): one esbuild bundle from
// src/app/main.js plus the page and its style sheet, copied as they are. The output depends only on
// the sources and the lockfile (no timestamps, no absolute paths), so CI rebuilds it and compares.

import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
