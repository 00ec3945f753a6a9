/**
 * The seed's own alert group (prometheus-alerts.yml in architecture.it.md),
 * verbatim, defects included: per-core CPU, no tree or job selectors, an
 * OrphanMountpoints `and` whose two sides never share a label set. Prometheus
 * evaluated it every 30 s beside the DecisionEngine's queries; the rules
 * bench loads it as the seed's side of the comparison.
 */
export const SEED_ALERT_RULES = `# prometheus-alerts.yml
groups:
  - name: media_tree_alerts
    interval: 30s
    rules:
      # High CPU
      - alert: HighCPUUsage
        expr: |
          (1 - rate(node_cpu_seconds_total{mode="idle",node_type="egress"}[1m])) * 100 > 80
        for: 5m
        labels:
          severity: warning
          component: scaling
        annotations:
          summary: "High CPU on {{ $labels.node_id }}"
          description: "CPU usage is {{ $value | humanize }}% on {{ $labels.node_id }}"

      # Port pool near exhaustion
      - alert: PortPoolExhaustion
        expr: |
          media_tree_egress_port_pool_utilization_percent > 85
        for: 2m
        labels:
          severity: critical
          component: scaling
        annotations:
          summary: "Port pool near exhaustion on {{ $labels.node_id }}"
          description: "Utilization: {{ $value | humanize }}%"

      # Packet loss
      - alert: PacketLoss
        expr: |
          rate(node_network_receive_drop_total{device!="lo"}[5m]) > 100
        for: 3m
        labels:
          severity: warning
          component: network
        annotations:
          summary: "Packet loss on {{ $labels.node_id }}"
          description: "Dropping {{ $value | humanize }} packets/sec"

      # Forwarder pipeline down
      - alert: ForwarderPipelineDown
        expr: |
          media_tree_relay_forwarder_state < 3
        for: 1m
        labels:
          severity: critical
          component: relay
        annotations:
          summary: "Forwarder pipeline not PLAYING on {{ $labels.node_id }}"
          description: "Pipeline state: {{ $value }}"

      # No active sessions but mountpoints exist
      - alert: OrphanMountpoints
        expr: |
          media_tree_injection_active_sessions == 0 and media_tree_egress_active_mountpoints > 0
        for: 10m
        labels:
          severity: info
          component: cleanup
        annotations:
          summary: "Orphan mountpoints detected"
          description: "{{ $value }} mountpoints exist but no active sessions"
`;
