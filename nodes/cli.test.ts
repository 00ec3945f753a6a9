import { describe, expect, it } from 'vitest';
import { runCanopy } from '../test/canopy.ts';

describe('canopy node', () => {
  it('lists the three apps', async () => {
    const r = await runCanopy(['node', '--help']);
    expect(r.code).toBe(0);
    for (const app of ['injection', 'relay', 'egress']) expect(r.stdout).toMatch(new RegExp(`^\\s+${app}\\b`, 'm'));
  });

  it.each([
    [['node', 'relay'], /required option '--node-id <id>' not specified/],
    [['node', 'relay', '--node-id', 'Relay_1'], /--node-id.*expected 1\.\.63 of a-z, 0-9, '-'/],
    [
      ['node', 'egress', '--node-id', 'egress-1', '--tree-id', 'tree-1\r\nFLUSHALL'],
      /--tree-id[\s\S]*expected 1\.\.63/,
    ],
    [['node', 'egress', '--node-id', 'egress-1', '--port-range', '30000-20000'], /--port-range.*expected MIN-MAX/],
    [
      ['node', 'egress', '--node-id', 'egress-1', '--forwarder-audio-port', '70000'],
      /--forwarder-audio-port.*expected 1\.\.65535, got 70000/,
    ],
    [
      ['node', 'egress', '--node-id', 'egress-1', '--forwarder-audio-port', '6000', '--forwarder-video-port', '6000'],
      /must differ/,
    ],
    [['node', 'injection', '--node-id', 'injection-1', '--redis-url', 'http://x'], /--redis-url.*redis:\/\//],
    [
      ['node', 'injection', '--node-id', 'injection-1', '--listen-host', 'not an ip'],
      /--listen-host.*expected an IP address/,
    ],
    [['node', 'relay', '--node-id', 'relay-1', '--slots', '0'], /--slots.*expected 1\.\.256, got 0/],
    [['node', 'relay', '--node-id', 'relay-1', '--log-level', 'loud'], /--log-level.*Allowed choices/],
    [
      ['node', 'injection', '--node-id', 'injection-1', '--source', 'zeros'],
      /--source.*Allowed choices are encoded, synthetic/,
    ],
    [
      ['node', 'injection', '--node-id', 'injection-1', '--video-pps', '100'],
      /--video-pps applies to --source synthetic only/,
    ],
    [
      ['node', 'injection', '--node-id', 'injection-1', '--source', 'synthetic', '--audio-pps', '0'],
      /--audio-pps.*expected 1\.\.10000, got 0/,
    ],
    // Item 7 of issue 13: WebRTC stays on one address, and a configuration that could never connect is refused.
    [['node', 'egress', '--node-id', 'egress-1', '--ice-bind', 'eth0'], /--ice-bind.*expected an IP address/],
    [['node', 'egress', '--node-id', 'egress-1', '--ice-bind', '0.0.0.0'], /--ice-bind.*wildcard would gather/],
    [['node', 'egress', '--node-id', 'egress-1', '--ice-bind', '::'], /--ice-bind.*wildcard would gather/],
    [
      ['node', 'egress', '--node-id', 'egress-1', '--advertise-host', '10.0.3.7'],
      /--advertise-host 10\.0\.3\.7 with --ice-bind 127\.0\.0\.1.*set --ice-bind/,
    ],
    [
      ['node', 'egress', '--node-id', 'egress-1', '--viewer-connect-timeout', '100ms'],
      /--viewer-connect-timeout.*1s\.\.10m/,
    ],
    [['node', 'egress', '--node-id', 'egress-1', '--nack-buffer', '9999'], /--nack-buffer.*expected 0\.\.4096/],
    // Issue 16: publishers.
    [
      ['node', 'injection', '--node-id', 'injection-1', '--whip-token-file', '/nonexistent/whip.token'],
      /--whip-token-file \/nonexistent\/whip\.token: ENOENT/,
    ],
    [
      ['node', 'injection', '--node-id', 'injection-1', '--whip-token-file', '/dev/null'],
      /--whip-token-file \/dev\/null: expected one token of 16\.\.1024 visible ASCII characters/,
    ],
    [['node', 'injection', '--node-id', 'injection-1', '--whip-grace', '10ms'], /--whip-grace.*1s\.\.1h/],
    [
      ['node', 'injection', '--node-id', 'injection-1', '--ingest-bind', '0.0.0.0'],
      /--ingest-bind.*wildcard would gather/,
    ],
    [
      ['node', 'egress', '--node-id', 'egress-1', '--keyframe-request-interval', 'never'],
      /--keyframe-request-interval.*0s\.\.60s, or off, got "never"/,
    ],
    [
      ['node', 'injection', '--node-id', 'injection-1', '--keyframe-request-interval', '2m'],
      /--keyframe-request-interval.*0s\.\.60s, or off/,
    ],
    [
      ['node', 'injection', '--node-id', 'injection-1', '--keyframe-interval', '50ms'],
      /--keyframe-interval.*100ms\.\.3600s/,
    ],
    [
      ['node', 'injection', '--node-id', 'injection-1', '--keyframe-interval', 'off'],
      /--keyframe-interval.*expected a duration/,
    ],
    [
      ['node', 'injection', '--node-id', 'injection-1', '--source', 'synthetic', '--keyframe-interval', '5s'],
      /--keyframe-interval applies to --source encoded only/,
    ],
  ])('refuses %j with a clear message and a non-zero exit', async (args, message) => {
    const r = await runCanopy(args, 20_000);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });

  it.each(['abc', '0', '-1', '12 34'])('refuses CANOPY_EXIT_WITH_PID=%j before it reaches for Redis', async (value) => {
    // Nothing listens on port 1: an app that got as far as Redis would retry, not exit.
    const r = await runCanopy(
      ['node', 'injection', '--node-id', 'injection-1', '--redis-url', 'redis://127.0.0.1:1'],
      20_000,
      { CANOPY_EXIT_WITH_PID: value },
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/CANOPY_EXIT_WITH_PID must be a process id/);
  });
});
