// The first screen's JavaScript, compressed (issue 13: under 250 KB of gzip). Prints each file's
// raw and gzip size and exits 1 when the total is over the budget.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const BUDGET = 250 * 1024;
const assets = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'assets');
let total = 0;
for (const name of readdirSync(assets).filter((n) => n.endsWith('.js')).sort()) {
  const raw = readFileSync(join(assets, name));
  const packed = gzipSync(raw, { level: 9 }).length;
  total += packed;
  console.log(`${name}: ${raw.length} bytes, ${packed} bytes gzip`);
}
console.log(`first screen JavaScript: ${total} bytes gzip (budget ${BUDGET})`);
if (total > BUDGET) {
  console.error('over the budget');
  process.exit(1);
}
