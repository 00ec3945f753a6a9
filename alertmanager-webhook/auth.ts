import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

const MIN_TOKEN_LENGTH = 16;

/** Reads the bearer token Alertmanager sends (its credentials_file), refusing a weak one. */
export function readToken(path: string): string {
  let token: string;
  try {
    token = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new Error(`cannot read the token file ${path}: ${(err as Error).message}`);
  }
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new Error(`the token in ${path} must be at least ${MIN_TOKEN_LENGTH} characters without spaces`);
  }
  return token;
}

/**
 * Compares an Authorization header with the token in constant time: both
 * sides are hashed first so their lengths leak nothing either.
 */
export function authorized(header: string | undefined, token: string): boolean {
  const given = /^Bearer (\S+)$/.exec(header ?? '')?.[1] ?? '';
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(token)) && given.length > 0;
}
