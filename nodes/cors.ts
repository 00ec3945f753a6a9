import type { NextFunction, Request, Response } from 'express';

/**
 * CORS of the WHEP endpoints (WHEP, section 4.8): any origin may POST an offer
 * and read Location and Retry-After. No cookies are involved, so `*` is
 * enough; after the entry point's cross-origin 307 the browser's Origin is
 * `null`, which `*` also covers.
 */
export const whepCors = corsAllowing('POST, OPTIONS');
/** An egress node's WHEP endpoint and its viewers' resources (which a player DELETEs). */
export const egressWhepCors = corsAllowing((req) =>
  /\/viewers\//.test(req.path) ? 'DELETE, OPTIONS' : 'POST, OPTIONS',
);
/** The injection's WHIP endpoint and resources: a browser publishes from any origin with its bearer token. */
export const whipCors = corsAllowing('POST, DELETE, PATCH, OPTIONS');

function corsAllowing(methods: string | ((req: Request) => string)) {
  return (req: Request, res: Response, next: NextFunction) =>
    cors(typeof methods === 'string' ? methods : methods(req), req, res, next);
}

function cors(methods: string, req: Request, res: Response, next: NextFunction): void {
  res.set({
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Expose-Headers': 'Location, Retry-After, Accept-Post',
  });
  if (req.method === 'OPTIONS') {
    res
      .status(204)
      .set({
        'Access-Control-Allow-Methods': methods,
        'Access-Control-Allow-Headers': 'Content-Type, Authorization',
        'Access-Control-Max-Age': '600',
        'Accept-Post': 'application/sdp',
      })
      .end();
    return;
  }
  next();
}
