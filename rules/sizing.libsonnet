// Sizing: how much capacity a tree uses and how many subtrees it needs.
// The scale-out precedence (alerts.libsonnet) decides whether a tree scales
// and why; these rules decide how much. The capacity is the tree's egress
// port pools taken together: viewers stay on the node they joined, so after a
// scale-out the old nodes stay full while the new ones fill, and only the
// whole tree says whether there is room.
//
// HPA-style: egress nodes needed = nodes * utilisation / target, in whole
// subtrees of subtreeEgressNodes beyond egressBaselineNodes (ceil), bounded
// to [0, maxSubtrees]. Every rule reads only present series (a down target's
// are stale-marked at its first failed scrape), so absent inputs give no
// size, never a size of 0.
//
// A group of its own, evaluated on the same interval as the scaling group,
// which reads it (one evaluation later at most).
local metrics = import 'metrics.libsonnet';

{
  local c = $._config,
  local tree = c.treeLabel,

  recorded+:: {
    treePortsAllocated: 'tree_id:%s:sum' % metrics.egress.portPoolAllocated,
    treePortsTotal: 'tree_id:media_tree_egress_port_pool_size:sum',
    treePortsUtilisation: 'tree_id:media_tree_egress_port_pool_utilisation:ratio',
    treeViewersPerNode: 'tree_id:media_tree_egress_viewers_per_node:ratio',
    treePortsForecast: 'tree_id:%s:predict_linear%s' % [metrics.egress.portPoolAllocated, c.forecastWindow],
    treeDesiredSubtrees: 'tree_id:media_tree_egress_subtrees_desired:ceil',
  },
  local r = self.recorded,
  local sel = c.egressSelector,
  local horizon = c.forecastProvisioningSeconds + c.forecastMarginSeconds,

  // The ports the size is computed from: the forecast's when more (capacity
  // ready before it is needed), else those allocated now. The forecast counts
  // at most the tree's whole pools: a burst of arrivals extrapolated is no
  // measure of how far it goes.
  local sizingPorts =
    if c.forecastScaleOut
    then '((%(f)s < %(t)s or %(t)s and %(f)s) > %(a)s or %(a)s)' % { f: r.treePortsForecast, t: r.treePortsTotal, a: r.treePortsAllocated }
    else r.treePortsAllocated,

  sizingRecordings:: [
    {
      record: r.treePortsAllocated,
      expr: 'sum by (%s) (%s{%s})' % [tree, metrics.egress.portPoolAllocated, sel],
    },
    {
      // allocated + available: a node's whole pool, read from one scrape.
      record: r.treePortsTotal,
      expr: 'sum by (%(tree)s) (%(alloc)s{%(sel)s} + %(avail)s{%(sel)s})' % {
        tree: tree,
        alloc: metrics.egress.portPoolAllocated,
        avail: metrics.egress.portPoolAvailable,
        sel: sel,
      },
    },
    {
      // No ratio for a tree without ports (the seed divided by zero).
      record: r.treePortsUtilisation,
      expr: '%s / (%s > 0)' % [r.treePortsAllocated, r.treePortsTotal],
    },
    {
      // Per egress node whose app answers scrapes (the scaling group's count).
      record: r.treeViewersPerNode,
      expr: 'sum by (%(tree)s) (%(viewers)s{%(sel)s})\n/ on (%(tree)s)\n(%(up)s > 0)\n' % {
        tree: tree,
        viewers: metrics.egress.activeViewers,
        sel: sel,
        up: r.treeEgressUp,
      },
    },
  ] + (
    if c.forecastScaleOut then [{
      // Demand, not utilisation: the ports allocated, whose trend capacity
      // added meanwhile does not bend. Only while the tree reports now: a
      // window of old samples is no forecast.
      record: r.treePortsForecast,
      expr: 'predict_linear(%(u)s[%(w)s], %(h)d)\nand on (%(tree)s)\n%(u)s\n' % {
        u: r.treePortsAllocated,
        w: c.forecastWindow,
        h: horizon,
        tree: tree,
      },
    }] else []
  ) + [
    {
      // Subtrees beyond the baseline so that the pools would be at the
      // target: nodes needed = ports * nodes / (pool size * target), as
      // one division of integers, so a whole number of nodes is exact and
      // ceil rounds only a real excess up. The node count is the pools' own.
      record: r.treeDesiredSubtrees,
      expr: |||
        clamp(
          ceil(
            (
              %(ports)s * 100
              * on (%(tree)s) count by (%(tree)s) (%(alloc)s{%(sel)s})
              / on (%(tree)s) (%(total)s * %(target)g > 0)
              - %(baseline)d
            ) / %(subtree)d
          ),
          0, %(max)d
        )
      ||| % {
        ports: sizingPorts,
        tree: tree,
        alloc: metrics.egress.portPoolAllocated,
        sel: sel,
        total: r.treePortsTotal,
        target: c.sizingTargetPortPoolPercent,
        baseline: c.egressBaselineNodes,
        subtree: c.subtreeEgressNodes,
        max: c.maxSubtrees,
      },
    },
  ],

  prometheusRules+:: {
    groups+: [
      {
        name: 'media-tree.sizing',
        interval: c.ruleInterval,
        rules: $.sizingRecordings,
      },
    ],
  },
}
