// Selectors, variables, links and panels the three dashboards share. A mixin
// fragment: `$` is the rule pack plus the dashboards, so _config and the
// recorded names come from rules/.
local g = import 'grafana.libsonnet';

{
  local c = $._config,

  dashboardCommon:: {
    local common = self,
    tree: '%s=~"$tree_id"' % c.treeLabel,
    // tree, node type and node: what Node detail filters every query by.
    node: common.tree + ', node_type=~"$node_type", node_id=~"$node_id"',

    // Every scrape job of the pack: the tree and node lists come from `up`,
    // so a node shows up as soon as it is a target, whatever it exposes.
    jobsRegex: std.join('|', [c.jobs[j] for j in std.objectFields(c.jobs)]),
    treeVariable: g.queryVariable('tree_id', 'Tree', 'up{job=~"%s"}' % common.jobsRegex),
    nodeTypeVariable: g.queryVariable('node_type', 'Node type', 'up{job=~"%s", %s}' % [common.jobsRegex, common.tree]),
    nodeIdVariable: g.queryVariable('node_id', 'Node', 'up{job=~"%s", %s, node_type=~"$node_type"}' % [common.jobsRegex, common.tree]),

    runbook(alert): g.link('Runbook: ' + alert, c.runbookURLPattern % std.asciiLower(alert)),

    // Relative, so the link works on whatever URL Grafana is served.
    nodeDetailLink: {
      title: 'Node detail: ${__field.labels.node_id}',
      url: '/d/%s?var-tree_id=${__field.labels.tree_id}&var-node_type=${__field.labels.node_type}&var-node_id=${__field.labels.node_id}&${__url_time_range}' % c.dashboards.nodeDetail.uid,
    },
    treeOverviewLink: {
      title: 'Tree overview: ${__field.labels.tree_id}',
      url: '/d/%s?var-tree_id=${__field.labels.tree_id}&${__url_time_range}' % c.dashboards.treeOverview.uid,
    },

    links: [
      { title: 'Canopy', type: 'dashboards', tags: ['canopy'], asDropdown: true, includeVars: true, keepTime: true, targetBlank: false, icon: 'external link', tooltip: '', url: '' },
      { title: 'Runbook', type: 'link', url: c.runbookURL, targetBlank: true, icon: 'doc', tooltip: 'rules/runbook.md', tags: [], asDropdown: false, includeVars: false, keepTime: false },
    ],

    portPoolSteps: [['green', null], ['yellow', c.portPoolWarningPercent], ['red', c.portPoolScaleOutPercent]],

    forwarderStates: g.valueMappings({
      '0': ['NULL', 'red'],
      '1': ['READY', 'orange'],
      '2': ['PAUSED', 'yellow'],
      '3': ['PLAYING', 'green'],
    }),

    // Scale decisions: the rule pack's scaling alerts while they fire.
    scaleAlerts: 'ALERTS{alertname=~"MediaTreeScale.*", alertstate="firing", %s}' % common.tree,
    scaleDecisionsAnnotation: g.annotation(
      'Scale decisions',
      common.scaleAlerts,
      '{{alertname}} {{reason}}',
      'tree {{tree_id}}, urgency {{urgency}}',
      'tree_id,alertname,reason,urgency',
      'orange',
    ),
    scaleAlertsPanel(w=12):
      g.stateTimeline(
        'Scale alerts firing',
        'none',
        [g.target('max by (%s, alertname, reason) (%s)' % [c.treeLabel, common.scaleAlerts], '{{tree_id}} {{alertname}} {{reason}}')],
        'MediaTreeScaleOut / MediaTreeScaleIn of the rule pack while firing: the decisions the actuator receives.',
        w=w,
      )
      + g.withMappings(g.valueMappings({ '1': ['firing', 'orange'] }))
      + g.withLinks([common.runbook('MediaTreeScaleOut'), common.runbook('MediaTreeScaleIn')]),
  },
}
