/**
 * A small subset of Prometheus' target relabelling (replace, keep, drop,
 * labeldrop) and the meta labels kubernetes_sd (role: pod) gives one
 * container port of a pod: enough to run the committed scrape configs and
 * PodMonitors against the pods the fake API server made.
 */
export interface Relabel {
  source_labels?: string[];
  regex?: string;
  target_label?: string;
  replacement?: string;
  action?: string;
  separator?: string;
}

export function podMeta(pod: Record<string, any>, portName: string, ns: string): Record<string, string> {
  const meta: Record<string, string> = {
    __meta_kubernetes_namespace: ns,
    __meta_kubernetes_pod_name: pod.metadata.name,
    __meta_kubernetes_pod_container_port_name: portName,
  };
  // Prometheus turns every character outside [a-zA-Z0-9_] of a label name into '_'.
  for (const [k, v] of Object.entries(pod.metadata.labels as Record<string, string>))
    meta[`__meta_kubernetes_pod_label_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`] = v;
  return meta;
}

export function relabel(input: Record<string, string>, rules: Relabel[]): Record<string, string> | undefined {
  const labels = { ...input };
  for (const r of rules) {
    const action = (r.action ?? 'replace').toLowerCase();
    const re = new RegExp(`^(?:${r.regex ?? '(.*)'})$`);
    if (action === 'labeldrop') {
      for (const k of Object.keys(labels)) if (re.test(k)) delete labels[k];
      continue;
    }
    const value = (r.source_labels ?? []).map((l) => labels[l] ?? '').join(r.separator ?? ';');
    const m = re.exec(value);
    if (action === 'keep' && !m) return undefined;
    if (action === 'drop' && m) return undefined;
    if (action === 'replace' && m && r.target_label) {
      labels[r.target_label] = (r.replacement ?? '$1').replace(/\$(\d+)/g, (_s, i: string) => m[Number(i)] ?? '');
    }
    if (!['keep', 'drop', 'replace'].includes(action))
      throw new Error(`relabel action ${action} not supported by this test`);
  }
  return labels;
}
