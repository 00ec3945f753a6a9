import type { NextFunction, Request, Response } from 'express';

/**
 * CORS for the WHEP endpoints (the entry point's and the egress's): any origin
 * may POST an offer and DELETE its viewer, and read the Location. No cookies
 * are involved, so `*` is enough; after the entry point's cross-origin 307 the
 * browser's Origin is `null`, which `*` also covers.
 */
export function whepCors(req: Request, res: Response, next: NextFunction): void {
  res.set({
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Allow-Methods': 'POST, DELETE, OPTIONS',
    'Access-Control-Allow-Headers': 'Content-Type, Authorization',
    'Access-Control-Expose-Headers': 'Location, Retry-After',
    'Access-Control-Max-Age': '600',
  });
  if (req.method === 'OPTIONS') {
    res.status(204).end();
    return;
  }
  next();
}
