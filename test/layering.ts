import { readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

/**
 * The allowed-imports table of README.md, checked on the code. A row names a
 * folder (`process/`), or `./` for files at the top, or `*.test.ts` for the
 * tests; its "may import" cell lists folders (ending in /) and npm packages,
 * each in backticks.
 */
export interface LayeringTable {
  /** Folder ('' for the top) -> the folders and packages its files may import. */
  folders: Map<string, { folders: Set<string>; packages: Set<string> }>;
  /** What a test may import besides its own folder's list. */
  tests: { folders: Set<string>; packages: Set<string> };
}

export const TESTS_ROW = '*.test.ts';
const BEGIN = '<!-- layering:begin -->';
const END = '<!-- layering:end -->';

export function parseLayeringTable(markdown: string): LayeringTable {
  const start = markdown.indexOf(BEGIN);
  const end = markdown.indexOf(END);
  if (start < 0 || end < start) throw new Error(`no ${BEGIN} ... ${END} block`);
  const folders: LayeringTable['folders'] = new Map();
  let tests: LayeringTable['tests'] | undefined;
  for (const line of markdown.slice(start + BEGIN.length, end).split('\n')) {
    const cells = line.trim().split('|').slice(1, -1);
    if (cells.length !== 3 || /^-+$/.test(cells[0]!.trim()) || cells[0]!.trim() === 'folder') continue;
    const name = /`([^`]+)`/.exec(cells[0]!)?.[1];
    if (!name) throw new Error(`a layering row without a folder: ${line}`);
    const allowed = { folders: new Set<string>(), packages: new Set<string>() };
    for (const [, item] of cells[2]!.matchAll(/`([^`]+)`/g)) {
      if (item!.endsWith('/')) allowed.folders.add(item === './' ? '' : item!.slice(0, -1));
      else allowed.packages.add(item!);
    }
    if (name === TESTS_ROW) tests = allowed;
    else if (name.endsWith('/')) folders.set(name === './' ? '' : name.slice(0, -1), allowed);
    else throw new Error(`a layering row names ${name}: expected a folder ending in / or ${TESTS_ROW}`);
  }
  if (!tests) throw new Error(`no ${TESTS_ROW} row`);
  return { folders, tests };
}

/** Every module specifier a TypeScript/JavaScript source imports: static, type-only, side-effect, export-from, dynamic. */
export function importsOf(source: string): string[] {
  const specs: string[] = [];
  const patterns = [
    /(?:^|\n)\s*(?:import|export)\s[^'"`;]*?\sfrom\s*(['"])([^'"]+)\1/g,
    /(?:^|\n)\s*import\s*(['"])([^'"]+)\1/g,
    /\bimport\(\s*(['"])([^'"]+)\1\s*\)/g,
  ];
  for (const p of patterns) for (const m of source.matchAll(p)) specs.push(m[2]!);
  return specs;
}

/** The top-level folder of a repository path ('' for a file at the top). */
function topFolder(path: string): string {
  const i = path.indexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/** The npm package a bare specifier names ('vitest/node' -> 'vitest', '@a/b/c' -> '@a/b'). */
function packageOf(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/**
 * The imports of `file` (a path relative to the repository root) that its row
 * of the table does not allow, as "file: specifier (why)".
 */
export function layeringViolations(table: LayeringTable, file: string, source: string): string[] {
  const folder = topFolder(file);
  const own = table.folders.get(folder);
  if (!own) return [`${file}: folder ${folder || './'} has no row in the layering table`];
  // A test may also import the folders its row names, and what those may import.
  const rows = [own];
  if (file.endsWith('.test.ts')) {
    rows.push(table.tests);
    for (const f of table.tests.folders) rows.push(table.folders.get(f) ?? table.tests);
  }
  const mayFolder = (f: string) => f === folder || rows.some((r) => r.folders.has(f));
  const mayPackage = (p: string) => rows.some((r) => r.packages.has(p));
  const bad: string[] = [];
  for (const spec of importsOf(source)) {
    if (spec.startsWith('node:')) continue;
    if (spec.startsWith('.')) {
      const target = normalize(join(dirname(file), spec));
      if (target.startsWith('..')) bad.push(`${file}: ${spec} (outside the repository)`);
      else if (!mayFolder(topFolder(target))) bad.push(`${file}: ${spec} (${topFolder(target) || './'} not allowed)`);
    } else if (!mayPackage(packageOf(spec))) bad.push(`${file}: ${spec} (package ${packageOf(spec)} not allowed)`);
  }
  return bad;
}

/** Reads the table out of README.md at `root`. */
export function readLayeringTable(root: string): LayeringTable {
  return parseLayeringTable(readFileSync(join(root, 'README.md'), 'utf8'));
}
