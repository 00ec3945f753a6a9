/**
 * The systemd units of deploy/systemd/, checked by systemd itself:
 * `systemd-analyze verify` (syntax, directives, the commands they run exist)
 * on an instance of each, and `systemd-analyze security --offline` for the
 * sandboxing they claim.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../rules/jsonnet.ts';

const SRC = join(ROOT, 'deploy/systemd');
const dir = mkdtempSync(join(tmpdir(), 'canopy-units-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const unitFiles = readdirSync(SRC).filter((f) => f.endsWith('.service'));
for (const f of unitFiles) {
  let text = readFileSync(join(SRC, f), 'utf8');
  // verify checks that ExecStart's program exists; node may live elsewhere on
  // this machine than on the Debian host the unit is written for.
  if (!existsSync('/usr/bin/node')) text = text.replaceAll('/usr/bin/node', process.execPath);
  writeFileSync(join(dir, f), text);
}
// Instances of the templates, named as a node id would be.
const instances = unitFiles.map((f) => (f.endsWith('@.service') ? f.replace('@.service', '@egress-1.service') : f));

function analyze(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('systemd-analyze', args, { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

describe('systemd units', () => {
  it('are the node app, its node_exporter and the actuator', () => {
    expect(unitFiles.sort()).toEqual([
      'canopy-actuator.service',
      'canopy-node-exporter@.service',
      'canopy-node@.service',
    ]);
  });

  it.each(instances)('systemd-analyze verify %s: no error, no warning', (unit) => {
    const r = analyze(['verify', `./${unit}`]);
    expect(r.out).toBe('');
    expect(r.status).toBe(0);
  });

  it('verify catches a bad directive and a missing program (so the check above can fail)', () => {
    copyFileSync(join(dir, 'canopy-actuator.service'), join(dir, 'broken.service'));
    const text = readFileSync(join(dir, 'broken.service'), 'utf8')
      .replace('ProtectSystem=strict', 'ProtectSystem=sometimes')
      .replace(/ExecStart=\S+/, 'ExecStart=/nonexistent/node');
    writeFileSync(join(dir, 'broken.service'), text);
    const r = analyze(['verify', './broken.service']);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/protect system value/i);
    expect(r.out).toMatch(/not executable/);
  });

  it.each(instances)('%s is sandboxed: exposure below 4 of 10 (systemd-analyze security)', (unit) => {
    const r = analyze(['security', '--offline=true', '--no-pager', `./${unit}`]);
    const m = /Overall exposure level for \S+: ([\d.]+)/.exec(r.out);
    expect(m, r.out).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(4);
    for (const d of ['NoNewPrivileges', 'ProtectSystem', 'DynamicUser', 'Restart'])
      expect(readFileSync(join(SRC, unit.replace('@egress-1', '@')), 'utf8')).toMatch(new RegExp(`^${d}=`, 'm'));
  });
});
