// Alerts about the actuator itself, for people (component="actuator" goes to
// Slack, never back to the actuator): it is down, its actions fail or hang,
// it refuses or cannot record Alertmanager's notifications, or a tree asks for
// capacity and gets none. Metric names are the actuator's contract
// (exporters/actuator.ts, generated into metrics.libsonnet).
//
// The actuator's labelled counters appear only at their first increment (at
// 1), which increase() cannot see: `counted` also counts a series newer than
// its window, when Prometheus did scrape that actuator a window ago (or the
// process is younger than the window) — so the first failure of a tree
// alerts, and a Prometheus outage, after which every series looks new, does not.
local metrics = import 'metrics.libsonnet';

// '15m' -> 900: a single-unit Prometheus duration in seconds.
local seconds(d) =
  local unit = d[std.length(d) - 1];
  local units = { s: 1, m: 60, h: 3600 };
  assert std.objectHas(units, unit) : 'duration %s: one of s, m, h expected' % d;
  std.parseInt(std.substr(d, 0, std.length(d) - 1)) * units[unit];

{
  local c = $._config,
  local m = metrics.actuator,
  local tree = c.treeLabel,
  local sel(extra='') = '{%s%s}' % [c.actuatorSelector, extra],

  // Increments of counter `name` (selector `s`) within `w`, rounded (raw
  // deltas are whole; extrapolation is not), by `by`; absent when none.
  // process_start_time_seconds: prom-client's default metric.
  local counted(name, s, w, by) = |||
    sum by (%(by)s) (
      round(increase(%(m)s%(s)s[%(w)s])) > 0
      or
      (
        (%(m)s%(s)s unless %(m)s%(s)s offset %(w)s)
        and on (job, instance)
        (up{%(sel)s} offset %(w)s == 1 or time() - process_start_time_seconds{%(sel)s} < %(ws)d)
      )
    ) > 0
  ||| % { m: name, s: s, w: w, ws: seconds(w), by: by, sel: c.actuatorSelector },

  local firing(filter) = 'ALERTS{alertstate="firing", %s}' % filter,

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'canopy.actuator',
        interval: c.ruleInterval,
        rules: [
          {
            // A failing target, or no target at all while scaling alerts fire
            // (they would reach nobody). Without scaling alerts a missing job
            // is a deployment without an actuator, which is allowed.
            alert: 'CanopyActuatorDown',
            expr: |||
              up{%(sel)s} == 0
              or on ()
              (
                absent(up{%(sel)s})
                and on ()
                %(scaling)s
              )
            ||| % { sel: c.actuatorSelector, scaling: firing('component="scaling"') },
            'for': c.forDurations.actuatorDown,
            labels: { severity: 'critical', component: 'actuator' },
            annotations: {
              summary: 'The actuator is down.',
              description: 'Prometheus cannot scrape the actuator (job {{ $labels.job }}{{ with $labels.instance }}, target {{ . }}{{ else }}: no target while scaling alerts fire{{ end }}); scaling decisions sent to it are not acted on.',
            },
          },
          {
            alert: 'CanopyActuatorActionsFailing',
            expr: counted(m.failures, sel(), c.actuatorFailuresWindow, '%s, action, reason' % tree),
            'for': c.forDurations.actuatorActionsFailing,
            labels: { severity: 'warning', component: 'actuator' },
            annotations: {
              summary: 'Actuator actions fail.',
              description: '{{ $value | humanize }} {{ $labels.action }} action(s) of tree {{ $labels.tree_id }} failed in the last %s, reason {{ $labels.reason }}.' % c.actuatorFailuresWindow,
            },
          },
          {
            // Sustained: longer than the window, so one stray post never fires.
            alert: 'CanopyActuatorRejectingNotifications',
            expr: 'round(increase(%s%s[%s])) > 0\n' % [m.notifications, sel(', outcome="rejected"'), c.actuatorNotificationsWindow],
            'for': c.forDurations.actuatorRejectingNotifications,
            labels: { severity: 'warning', component: 'actuator' },
            annotations: {
              summary: 'The actuator rejects webhook notifications.',
              description: 'The actuator {{ $labels.instance }} rejected {{ $value | humanize }} webhook posts in the last %s (bad payload, token or size): Alertmanager misconfigured, or someone else posting.' % c.actuatorNotificationsWindow,
            },
          },
          {
            alert: 'CanopyActuatorUnavailable',
            expr: 'round(increase(%s%s[%s])) > 0\n' % [m.notifications, sel(', outcome="unavailable"'), c.actuatorNotificationsWindow],
            'for': c.forDurations.actuatorUnavailable,
            labels: { severity: 'critical', component: 'actuator' },
            annotations: {
              summary: 'The actuator cannot record notifications.',
              description: 'The actuator {{ $labels.instance }} answered {{ $value | humanize }} webhook posts with 503 in the last %s: Redis does not answer, so scaling decisions are not recorded (Alertmanager retries them).' % c.actuatorNotificationsWindow,
            },
          },
          {
            // Any 0 within the window restarts the clock; a failed scrape does
            // not. Replicas read the same Redis: one alert per tree.
            alert: 'CanopyActuatorStuck',
            expr: 'max by (%s) (min_over_time(%s%s[%s])) == 1\n' % [tree, m.inFlight, sel(), c.actuatorGaugeWindow],
            'for': c.forDurations.actuatorStuck,
            labels: { severity: 'warning', component: 'actuator' },
            annotations: {
              summary: 'An actuator action does not finish.',
              description: 'Tree {{ $labels.tree_id }} has had an actuator action in flight for over %s: a step hangs, or the actuator stopped in the middle of it.' % c.forDurations.actuatorStuck,
            },
          },
          {
            // One MediaTreeScaleOut per tree at a time (precedence), so the
            // count is 1. A scale-out that succeeded within the window, even
            // one of an earlier firing episode, silences it.
            alert: 'CanopyActuatorScaleOutNotActing',
            expr: |||
              count by (%(tree)s) (%(scaleOut)s)
              unless on (%(tree)s) (
                %(succeeded)s)
            ||| % {
              tree: tree,
              scaleOut: firing('alertname="MediaTreeScaleOut"'),
              succeeded: std.strReplace(
                std.rstripChars(counted(m.actions, sel(', action="scale_out", outcome="succeeded"'), c.actuatorScaleOutWindow, tree), '\n'),
                '\n',
                '\n  ',
              ),
            },
            'for': c.forDurations.actuatorScaleOutNotActing,
            labels: { severity: 'warning', component: 'actuator' },
            annotations: {
              summary: 'A media tree asks for capacity and the actuator adds none.',
              description: 'MediaTreeScaleOut has fired for tree {{ $labels.tree_id }} for over %s and no scale-out of it succeeded in the last %s.' % [c.forDurations.actuatorScaleOutNotActing, c.actuatorScaleOutWindow],
            },
          },
        ],
      },
    ],
  },
}
