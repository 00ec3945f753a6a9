import { InvalidArgumentError, Option } from 'commander';

/** An integer flag in [min, max], refused with a message that names the bounds. */
export function intOption(
  flags: string,
  description: string,
  env: string,
  def: number,
  min: number,
  max: number,
): Option {
  return new Option(flags, description)
    .env(env)
    .default(def)
    .argParser((raw: string) => {
      if (!/^\d+$/.test(raw.trim())) throw new InvalidArgumentError(`expected a whole number, got "${raw}"`);
      const n = Number(raw);
      if (n < min || n > max) throw new InvalidArgumentError(`expected ${min}..${max}, got ${n}`);
      return n;
    });
}
