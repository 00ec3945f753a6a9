import { Command, InvalidArgumentError, Option } from 'commander';
import { DURATION_FORM, parseDuration } from '../process/duration.ts';
import { intOption } from './options.ts';

/** `canopy viewers --whep <url> --count N [--rate R] [--duration D]`: real WebRTC viewers for load. */
export function viewersCommand(): Command {
  return new Command('viewers')
    .description("run N WebRTC viewers (node-datachannel, on 127.0.0.1) of a WHEP URL, e.g. a tree's entry point")
    .showHelpAfterError()
    .addOption(
      new Option('--whep <url>', 'the WHEP endpoint: http(s)://<entry point>/whep/<session>')
        .env('CANOPY_WHEP_URL')
        .makeOptionMandatory()
        .argParser((raw: string) => {
          let u: URL;
          try {
            u = new URL(raw);
          } catch {
            throw new InvalidArgumentError(`expected an http(s) URL, got ${JSON.stringify(raw)}`);
          }
          if (u.protocol !== 'http:' && u.protocol !== 'https:')
            throw new InvalidArgumentError(`expected an http(s) URL, got ${JSON.stringify(raw)}`);
          if (!/\/whep\/[a-z0-9][a-z0-9-]{0,62}$/.test(u.pathname))
            throw new InvalidArgumentError(`expected a URL ending in /whep/<session id>, got ${JSON.stringify(raw)}`);
          return u.toString();
        }),
    )
    .addOption(intOption('--count <n>', 'viewers to start', 'CANOPY_VIEWERS_COUNT', 1, 1, 2_000).makeOptionMandatory())
    .addOption(
      new Option('--rate <r>', 'viewers started per second')
        .env('CANOPY_VIEWERS_RATE')
        .default(10)
        .argParser((raw: string) => {
          const n = Number(raw);
          if (!/^\d+(\.\d+)?$/.test(raw.trim()) || !(n > 0) || n > 1_000)
            throw new InvalidArgumentError(`expected a number of viewers per second in (0, 1000], got "${raw}"`);
          return n;
        }),
    )
    .addOption(
      new Option('--duration <d>', 'how long the viewers stay once all are started')
        .env('CANOPY_VIEWERS_DURATION')
        .default(10_000, '10s')
        .argParser((raw: string) => {
          const ms = parseDuration(raw);
          if (ms === null) throw new InvalidArgumentError(`expected ${DURATION_FORM}, got "${raw}"`);
          return ms;
        }),
    )
    .action(async (o: { whep: string; count: number; rate: number; duration: number }) => {
      const { runViewers, formatResult, releaseWebRtc } = await import('../viewers/load.ts');
      const r = await runViewers({
        whep: o.whep,
        count: o.count,
        rate: o.rate,
        durationMs: o.duration,
        log: (line) => console.error(line),
      });
      for (const line of formatResult(r, o.count)) console.log(line);
      releaseWebRtc();
      if (r.connected === 0) process.exitCode = 1;
    });
}
