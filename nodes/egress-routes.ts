import type { Express } from 'express';
import type { EgressMounts } from './egress-mounts.ts';
import type { WhepViewers } from './whep-viewers.ts';

/** `GET /sessions`: the mountpoints, their WHEP viewers and the pool (the viewers' API is `whep-routes.ts`). */
export function egressRoutes(app: Express, o: { mounts: EgressMounts; viewers: WhepViewers }): void {
  app.get('/sessions', (_req, res) => {
    const d = o.mounts.describe();
    res.json({
      ...d,
      sessions: d.sessions.map((s) => ({ ...s, whep: o.viewers.describe(s.sessionId) })),
    });
  });
}
