/** Alertmanager version 4 notifications as 0.25 sends them, for tests and benchmarks. */
export interface AlertInput {
  labels: Record<string, string>;
  status?: 'firing' | 'resolved';
  fingerprint?: string;
  startsAt?: string;
}

export function notification(alerts: AlertInput[], status: 'firing' | 'resolved' = 'firing') {
  const commonLabels = alerts.length === 1 ? alerts[0]!.labels : {};
  return {
    receiver: 'actuator',
    status,
    alerts: alerts.map((a, i) => ({
      status: a.status ?? status,
      labels: a.labels,
      annotations: { summary: 'A media tree needs more egress capacity.' },
      startsAt: a.startsAt ?? '2026-11-25T10:00:00.000Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://127.0.0.1:9090/graph?g0.expr=x',
      fingerprint: a.fingerprint ?? (0xabc000 + i).toString(16).padStart(16, '0'),
    })),
    groupLabels: { alertname: alerts[0]?.labels.alertname ?? '' },
    commonLabels,
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:9093',
    version: '4',
    groupKey: '{}/{component="scaling"}:{alertname="MediaTreeScaleOut", tree_id="tree-1"}',
    truncatedAlerts: 0,
  };
}

export const scaleOut = (tree = 'tree-1', extra: Record<string, string> = {}) => ({
  alertname: 'MediaTreeScaleOut',
  component: 'scaling',
  severity: 'warning',
  tree_id: tree,
  urgency: 'critical',
  reason: 'port_pool',
  ...extra,
});

export const scaleIn = (tree = 'tree-1') => ({
  alertname: 'MediaTreeScaleIn',
  component: 'scaling',
  severity: 'info',
  tree_id: tree,
  urgency: 'low',
});
