/**
 * The six queries the seed's DecisionEngine sent to Prometheus for each tree
 * every 30 s (PrometheusClient in architecture.it.md), verbatim but for the
 * tree id. The baseline the rule pack replaces.
 */
export function seedDecisionQueries(treeId: string): Record<string, string> {
  return {
    getAvgCPU: `avg(avg_over_time((1 - rate(node_cpu_seconds_total{mode="idle",tree_id="${treeId}",node_type="egress"}[1m]))[5m:])) * 100`,
    getMaxPortPoolUtilization: `max(media_tree_egress_port_pool_utilization_percent{tree_id="${treeId}"})`,
    getTotalViewers: `sum(media_tree_egress_active_viewers{tree_id="${treeId}"})`,
    getDroppedPacketsRate: `sum(rate(node_network_receive_drop_total{tree_id="${treeId}",node_type="egress",device!="lo"}[5m]))`,
    getActiveSessions: `sum(media_tree_injection_active_sessions{tree_id="${treeId}"})`,
    getUnhealthyNodes: `((1 - rate(node_cpu_seconds_total{mode="idle",tree_id="${treeId}",node_type="egress"}[1m])) * 100 > 90 or (1 - (node_memory_MemAvailable_bytes{tree_id="${treeId}",node_type="egress"} / node_memory_MemTotal_bytes{tree_id="${treeId}",node_type="egress"})) * 100 > 90)`,
  };
}
