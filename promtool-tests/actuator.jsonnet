// The actuator's own alerts: each firing at its `for` boundary and silent
// just before, with the cases that must stay silent (a stray post, a counter
// that does not move, a break in an action, a scale-out that succeeded, a
// deployment without an actuator).
local lib = import 'lib.libsonnet';

local expect(alert, labels, description, summary) = {
  exp_labels: labels { component: 'actuator' },
  exp_annotations: {
    summary: summary,
    description: description,
    runbook_url: lib.runbook(alert),
    dashboard_url: lib.actuatorDashboard(std.get(labels, 'tree_id')),
  },
};

local downSummary = 'The actuator is down.';
local failingSummary = 'Actuator actions fail.';
local failing(tree, action, reason, n) = expect(
  'CanopyActuatorActionsFailing',
  { tree_id: tree, action: action, reason: reason, severity: 'warning' },
  '%d %s action(s) of tree %s failed in the last 15m, reason %s.' % [n, action, tree, reason],
  failingSummary,
);
local notActing(tree) = expect(
  'CanopyActuatorScaleOutNotActing',
  { tree_id: tree, severity: 'warning' },
  'MediaTreeScaleOut has fired for tree %s for over 15m and no scale-out of it succeeded in the last 15m.' % tree,
  'A media tree asks for capacity and the actuator adds none.',
);
local stuck(tree) = expect(
  'CanopyActuatorStuck',
  { tree_id: tree, severity: 'warning' },
  'Tree %s has had an actuator action in flight for over 15m: a step hangs, or the actuator stopped in the middle of it.' % tree,
  'An actuator action does not finish.',
);

lib.file([
  {
    name: 'CanopyActuatorDown: a target failing its scrapes for 2m',
    input_series:
      lib.actuatorUp(up='1x20 0x140')
      + lib.actuatorUp(instance='actuator-2:9095'),
    alert_rule_test: [
      // Down from 5m15s, pending at 5m30s, firing 2m later.
      { alertname: 'CanopyActuatorDown', eval_time: '7m', exp_alerts: [] },
      {
        alertname: 'CanopyActuatorDown',
        eval_time: '7m30s',
        exp_alerts: [expect(
          'CanopyActuatorDown',
          lib.actuatorTarget() { severity: 'critical' },
          'Prometheus cannot scrape the actuator (job canopy-actuator, target actuator-1:9095); scaling decisions sent to it are not acted on.',
          downSummary,
        )],
      },
    ],
  },
  {
    name: 'CanopyActuatorDown: no actuator target at all while a scale-out fires',
    // MediaTreeScaleOut (port_pool) fires from 2m; nobody scrapes an actuator.
    input_series: lib.egress('hot', 'egress-1', pool=90),
    alert_rule_test: [
      { alertname: 'CanopyActuatorDown', eval_time: '3m30s', exp_alerts: [] },
      {
        alertname: 'CanopyActuatorDown',
        eval_time: '4m',
        exp_alerts: [expect(
          'CanopyActuatorDown',
          { job: 'canopy-actuator', severity: 'critical' },
          'Prometheus cannot scrape the actuator (job canopy-actuator: no target while scaling alerts fire); scaling decisions sent to it are not acted on.',
          downSummary,
        )],
      },
    ],
  },
  {
    name: 'CanopyActuatorDown: no actuator and nothing to scale is a monitoring-only deployment',
    input_series: lib.egress('calm', 'egress-1', pool=50),
    alert_rule_test: [
      { alertname: 'MediaTreeScaleOut', eval_time: '30m', exp_alerts: [] },
      { alertname: 'CanopyActuatorDown', eval_time: '30m', exp_alerts: [] },
    ],
  },
  {
    name: 'CanopyActuatorActionsFailing: a first failure (new series), a later one, one after a restart',
    input_series:
      // Running since an hour before the data.
      lib.actuatorUp()
      // The first failure of tree t: its series appears at 20m15s, at 1.
      + lib.actuatorFailures('t', 'scale_out', 'timeout', '_x81 1x78')
      // Failed before the data (not new: Prometheus had not seen it yet),
      // again at 25m15s.
      + lib.actuatorFailures('u', 'scale_in', 'drain', '1x100 2x59')
      // The actuator restarted (the counter reset) and then failed at 25m15s.
      + lib.actuatorFailures('v', 'scale_out', 'provision', '3x100 1x59')
      // Counting nothing new.
      + lib.actuatorFailures('w', 'scale_out', 'other', '2x159'),
    alert_rule_test: [
      { alertname: 'CanopyActuatorActionsFailing', eval_time: '20m', exp_alerts: [] },
      // No `for`: the new series of t fires at once, for 15m.
      { alertname: 'CanopyActuatorActionsFailing', eval_time: '20m30s', exp_alerts: [failing('t', 'scale_out', 'timeout', 1)] },
      { alertname: 'CanopyActuatorActionsFailing', eval_time: '25m', exp_alerts: [failing('t', 'scale_out', 'timeout', 1)] },
      { alertname: 'CanopyActuatorActionsFailing', eval_time: '25m30s', exp_alerts: [
        failing('t', 'scale_out', 'timeout', 1),
        failing('u', 'scale_in', 'drain', 1),
        failing('v', 'scale_out', 'provision', 1),
      ] },
      { alertname: 'CanopyActuatorActionsFailing', eval_time: '35m', exp_alerts: [
        failing('t', 'scale_out', 'timeout', 1),
        failing('u', 'scale_in', 'drain', 1),
        failing('v', 'scale_out', 'provision', 1),
      ] },
      { alertname: 'CanopyActuatorActionsFailing', eval_time: '35m30s', exp_alerts: [
        failing('u', 'scale_in', 'drain', 1),
        failing('v', 'scale_out', 'provision', 1),
      ] },
    ],
  },
  {
    name: 'CanopyActuatorActionsFailing: the first failure of an actuator younger than the window',
    input_series:
      lib.actuatorUp(started=0)
      + lib.actuatorFailures('t', 'scale_out', 'other', '_x20 1x139'),
    alert_rule_test: [
      { alertname: 'CanopyActuatorActionsFailing', eval_time: '4m30s', exp_alerts: [] },
      { alertname: 'CanopyActuatorActionsFailing', eval_time: '5m', exp_alerts: [failing('t', 'scale_out', 'other', 1)] },
    ],
  },
  {
    name: 'CanopyActuatorActionsFailing: after a Prometheus outage old failures are not new',
    input_series:
      // Prometheus scrapes from 20m on: every series looks new.
      lib.actuatorUp(up='_x80 1x79', started='_x80 -3600x79')
      + lib.actuatorFailures('t', 'scale_out', 'timeout', '_x80 2x40 3x38'),
    alert_rule_test: [
      { alertname: 'CanopyActuatorActionsFailing', eval_time: '20m', exp_alerts: [] },
      { alertname: 'CanopyActuatorActionsFailing', eval_time: '30m', exp_alerts: [] },
      // A failure at 30m15s counts.
      { alertname: 'CanopyActuatorActionsFailing', eval_time: '30m30s', exp_alerts: [failing('t', 'scale_out', 'timeout', 1)] },
    ],
  },
  {
    name: 'CanopyActuatorRejectingNotifications: rejections going on for 10m, not one stray post',
    input_series:
      lib.actuatorUp()
      + lib.actuatorUp(instance='actuator-2:9095')
      + lib.actuatorNotifications('accepted', lib.counter(0.25))
      // One rejected post a minute (every 4th sample) from 10m15s.
      + lib.actuatorNotifications('rejected', '1x40 ' + std.join(' ', [std.toString(2 + std.floor(i / 4)) for i in std.range(0, 118)]))
      // One stray post at 10m15s.
      + lib.actuatorNotifications('rejected', '1x40 2x119', instance='actuator-2:9095'),
    alert_rule_test: [
      { alertname: 'CanopyActuatorRejectingNotifications', eval_time: '20m', exp_alerts: [] },
      {
        alertname: 'CanopyActuatorRejectingNotifications',
        eval_time: '20m30s',
        exp_alerts: [expect(
          'CanopyActuatorRejectingNotifications',
          lib.actuatorTarget() { outcome: 'rejected', severity: 'warning' },
          'The actuator actuator-1:9095 rejected 5 webhook posts in the last 5m (bad payload, token or size): Alertmanager misconfigured, or someone else posting.',
          'The actuator rejects webhook notifications.',
        )],
      },
    ],
  },
  {
    name: 'CanopyActuatorUnavailable: 503s going on for 5m, not one Redis blip',
    input_series:
      lib.actuatorUp()
      + lib.actuatorUp(instance='actuator-2:9095')
      // Redis away from 10m: Alertmanager's retries, one every 15 s.
      + lib.actuatorNotifications('unavailable', '1x40 1+1x119')
      // One post refused at 10m15s, then Redis answers again.
      + lib.actuatorNotifications('unavailable', '1x40 2x119', instance='actuator-2:9095'),
    alert_rule_test: [
      { alertname: 'CanopyActuatorUnavailable', eval_time: '15m', exp_alerts: [] },
      {
        alertname: 'CanopyActuatorUnavailable',
        eval_time: '15m30s',
        exp_alerts: [expect(
          'CanopyActuatorUnavailable',
          lib.actuatorTarget() { outcome: 'unavailable', severity: 'critical' },
          'The actuator actuator-1:9095 answered 20 webhook posts with 503 in the last 5m: Redis does not answer, so scaling decisions are not recorded (Alertmanager retries them).',
          'The actuator cannot record notifications.',
        )],
      },
    ],
  },
  {
    name: 'CanopyActuatorStuck: in flight without a break for 15m; a failed scrape does not restart the clock, a finished action does',
    input_series:
      lib.actuatorUp()
      // In flight from 10m15s, one scrape lost at 20m30s.
      + lib.actuatorInFlight('t', '0x40 1x40 stale 1x78')
      // In flight from 0 but finished at 12m45s, and a new action right after.
      + lib.actuatorInFlight('u', '1x50 0 1x108')
      + lib.actuatorInFlight('idle', 0)
      // Two replicas read the same Redis: still one alert for the tree.
      + lib.actuatorInFlight('t', '0x40 1x119', instance='actuator-2:9095'),
    alert_rule_test: [
      // u would fire here without its break.
      { alertname: 'CanopyActuatorStuck', eval_time: '15m', exp_alerts: [] },
      // t: the window holds no 0 from 15m30s (pending), firing 15m later.
      { alertname: 'CanopyActuatorStuck', eval_time: '30m', exp_alerts: [] },
      { alertname: 'CanopyActuatorStuck', eval_time: '30m30s', exp_alerts: [stuck('t')] },
      // u: pending from 18m.
      { alertname: 'CanopyActuatorStuck', eval_time: '33m', exp_alerts: [stuck('t'), stuck('u')] },
    ],
  },
  {
    name: 'CanopyActuatorScaleOutNotActing: a scale-out firing for 15m with no scale-out succeeding',
    input_series:
      lib.actuatorUp()
      // MediaTreeScaleOut fires for both trees from 2m.
      + lib.egress('hot', 'egress-1', pool=90)
      + lib.egress('served', 'egress-2', pool=90)
      + lib.egress('calm', 'egress-3', pool=50)
      // Nothing for hot but a skipped action.
      + lib.actuatorActions('hot', 'scale_out', 'skipped', '_x20 1x139')
      // served: its first success (a new series) at 16m15s, just in time.
      + lib.actuatorActions('served', 'scale_out', 'succeeded', '_x65 1x94'),
    alert_rule_test: [
      { alertname: 'CanopyActuatorScaleOutNotActing', eval_time: '16m30s', exp_alerts: [] },
      { alertname: 'CanopyActuatorScaleOutNotActing', eval_time: '17m', exp_alerts: [notActing('hot')] },
      // served: pending again from 31m30s, when its success leaves the window.
      { alertname: 'CanopyActuatorScaleOutNotActing', eval_time: '40m', exp_alerts: [notActing('hot')] },
    ],
  },
  {
    name: 'CanopyActuatorScaleOutNotActing: resolves with the scale-out',
    input_series:
      lib.actuatorUp()
      + lib.egress('hot', 'egress-1', pool='90x100 50x59'),
    alert_rule_test: [
      { alertname: 'CanopyActuatorScaleOutNotActing', eval_time: '20m', exp_alerts: [notActing('hot')] },
      // The pool drains from 25m15s; MediaTreeScaleOut resolves, so does this.
      { alertname: 'CanopyActuatorScaleOutNotActing', eval_time: '26m', exp_alerts: [] },
    ],
  },
])
