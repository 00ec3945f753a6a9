import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The README's layout rule, checked on the code (tests may reach further: they start real stacks).
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ALLOWED: Record<string, RegExp> = {
  topology: /^(node:.+|ioredis|zod|\.\/.+)$/,
  forwarder: /^(node:.+|zod|\.\/.+)$/,
  nodes: /^(node:.+|ioredis|zod|express|pino|\.\/.+|\.\.\/(process|exporters|topology|forwarder)\/.+)$/,
};

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  return [...src.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)].map(
    (m) => (m[1] ?? m[2])!,
  );
}

describe('layering', () => {
  for (const [dir, allowed] of Object.entries(ALLOWED)) {
    it(`${dir}/ imports only what the README's layout table allows`, () => {
      const bad: string[] = [];
      for (const f of readdirSync(join(ROOT, dir))) {
        if (!f.endsWith('.ts') || f.endsWith('.test.ts')) continue;
        for (const spec of imports(join(ROOT, dir, f))) if (!allowed.test(spec)) bad.push(`${dir}/${f}: ${spec}`);
      }
      expect(bad).toEqual([]);
    });
  }
});
