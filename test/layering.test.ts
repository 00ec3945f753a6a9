import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importsOf, layeringViolations, parseLayeringTable, readLayeringTable } from './layering.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SKIP = new Set(['node_modules', 'build']);

/** Every TypeScript/JavaScript source of the repository, relative to its root. */
function sources(dir = ROOT): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.') || SKIP.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (/\.(ts|mts|mjs|js)$/.test(name)) out.push(relative(ROOT, path));
  }
  return out;
}

const table = readLayeringTable(ROOT);

describe('layering (the table in README.md)', () => {
  it('every import of every file, tests included, is one its row allows', () => {
    const files = sources();
    expect(files.length).toBeGreaterThan(100);
    const bad = files.flatMap((f) => layeringViolations(table, f, readFileSync(join(ROOT, f), 'utf8')));
    expect(bad).toEqual([]);
  });

  it('has a row for every top-level folder, and each row names one that exists', () => {
    const folders = readdirSync(ROOT).filter(
      (n) => !n.startsWith('.') && n !== 'node_modules' && statSync(join(ROOT, n)).isDirectory(),
    );
    expect([...table.folders.keys()].filter((f) => f !== '').sort()).toEqual(folders.sort());
  });

  it('names only packages the project depends on', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const known = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.devDependencies)]);
    const named = [...table.folders.values(), table.tests].flatMap((r) => [...r.packages]);
    expect(named.filter((p) => !known.has(p))).toEqual([]);
  });
});

describe('the layering checker', () => {
  // Spelled in two pieces, or the tree check above would read these as this file's own imports.
  const dynamicImport = (spec: string) => `const m = await ${'import'}('${spec}');`;
  const small = parseLayeringTable(`
<!-- layering:begin -->
| folder | owns | may import |
|---|---|---|
| \`process/\` | processes | \`zod\` |
| \`nodes/\` | apps | \`process/\`, \`express\` |
| \`test/\` | support | \`process/\`, \`nodes/\`, \`vitest\` |
| \`*.test.ts\` | tests | their folder's, plus \`test/\` and what \`test/\` may |
| \`stack/\` | the stack | \`nodes/\`, \`process/\` |
<!-- layering:end -->`);

  it('finds static, type-only, side-effect, export-from and dynamic imports', () => {
    const src = [
      "import { a } from './a.ts';",
      "import type { B } from '../b/b.ts';",
      "import '../c/c.ts';",
      "export { d } from '../d/d.ts';",
      'import {\n  e,\n  f,\n} from "../e/e.ts";',
      dynamicImport('../g/g.ts'),
      "// prose that says import x from 'nowhere' mid-line is not an import",
    ].join('\n');
    expect(importsOf(src).sort()).toEqual(['../b/b.ts', '../c/c.ts', '../d/d.ts', '../e/e.ts', '../g/g.ts', './a.ts']);
  });

  it('fails an import that points up, sideways or at a package the row does not name', () => {
    const src = [
      "import { freePort } from '../process/ports.ts';",
      "import { startStack } from '../stack/stack.ts';",
      "export { x } from '../test/x.ts';",
      dynamicImport('../stack/scenario.ts'),
      "import { Redis } from 'ioredis';",
      "import express from 'express';",
      "import { local } from './local.ts';",
    ].join('\n');
    expect(layeringViolations(small, 'nodes/app.ts', src)).toEqual([
      'nodes/app.ts: ../stack/stack.ts (stack not allowed)',
      'nodes/app.ts: ../test/x.ts (test not allowed)',
      'nodes/app.ts: ioredis (package ioredis not allowed)',
      'nodes/app.ts: ../stack/scenario.ts (stack not allowed)',
    ]);
    expect(layeringViolations(small, 'process/child.ts', "import { a } from '../nodes/a.ts';")).toEqual([
      'process/child.ts: ../nodes/a.ts (nodes not allowed)',
    ]);
  });

  it('lets a test import test/ and what test/ may, and nothing above', () => {
    const src =
      "import { it } from 'vitest';\nimport { n } from '../test/nodes.ts';\nimport { s } from '../nodes/s.ts';";
    expect(layeringViolations(small, 'process/ports.test.ts', src)).toEqual([]);
    expect(layeringViolations(small, 'process/ports.ts', src)).toEqual([
      'process/ports.ts: vitest (package vitest not allowed)',
      'process/ports.ts: ../test/nodes.ts (test not allowed)',
      'process/ports.ts: ../nodes/s.ts (nodes not allowed)',
    ]);
    expect(layeringViolations(small, 'nodes/app.test.ts', "import { startStack } from '../stack/stack.ts';")).toEqual([
      'nodes/app.test.ts: ../stack/stack.ts (stack not allowed)',
    ]);
  });

  it('fails a file in a folder the table does not know, and a path out of the repository', () => {
    expect(layeringViolations(small, 'misc/x.ts', '')).toEqual([
      'misc/x.ts: folder misc has no row in the layering table',
    ]);
    expect(layeringViolations(small, 'nodes/x.ts', "import y from '../../elsewhere/y.ts';")).toEqual([
      'nodes/x.ts: ../../elsewhere/y.ts (outside the repository)',
    ]);
  });
});
