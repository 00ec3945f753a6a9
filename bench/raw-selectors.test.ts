import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { rawSelectors } from './raw-selectors.ts';

const file = (...exprs: string[]) =>
  stringify({ groups: [{ name: 'g', rules: exprs.map((expr, i) => ({ record: `r${i}`, expr })) }] });

describe('rawSelectors', () => {
  it('keeps raw selectors once, ranges whole, and leaves out recorded series and ALERTS', () => {
    const got = rawSelectors([
      file(
        'sum without (device) (rate(node_network_receive_drop_total{device!="lo"}[5m]))',
        'count by (tree_id) (up{job="a"} == 1) or on (tree_id) 0 * tree_id:x:count',
        'ALERTS{alertstate="firing"} and up{job="a"}',
      ),
      file('avg_over_time(node_id:cpu:ratio[5m]) > 0.5 unless up{job="b"}'),
    ]);
    expect(got).toEqual(['node_network_receive_drop_total{device!="lo"}[5m]', 'up{job="a"}', 'up{job="b"}']);
  });
});
