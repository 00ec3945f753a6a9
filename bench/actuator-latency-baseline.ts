/**
 * The baseline of `canopy bench actuator`: the least an Alertmanager webhook
 * can do — express, the raw body read, JSON.parse'd, 202 — in a process of its
 * own, as ours runs in one. Port from BENCH_PORT.
 */
import express from 'express';

const port = Number(process.env.BENCH_PORT);
if (!Number.isInteger(port) || port <= 0) throw new Error('BENCH_PORT: expected a port number');

const app = express();
app.disable('x-powered-by');
app.get('/healthz', (_req, res) => {
  res.json({ ok: true });
});
app.post('/alerts', express.raw({ type: () => true, limit: 1 << 20 }), (req, res) => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '');
  } catch {
    res.status(400).json({ error: 'not JSON' });
    return;
  }
  const alerts = (parsed as { alerts?: unknown[] }).alerts;
  res.status(202).json({ accepted: Array.isArray(alerts) ? alerts.length : 0 });
});
const server = app.listen(port, '127.0.0.1');
const stop = () => server.close(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
