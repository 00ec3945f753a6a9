// Canopy's own small panel library, in the spirit of grafonnet (no Jsonnet
// dependency can be fetched): functions returning dashboards, panels, targets,
// thresholds and variables of Grafana's dashboard model (schemaVersion 39), and
// a grid layout that places panels without overlaps.
{
  // Every panel, variable and annotation queries the templated datasource:
  // the provisioning-friendly form (import/ swaps it for __inputs).
  datasource:: { type: 'prometheus', uid: '${datasource}' },

  target(expr, legend='', instant=false, format='time_series'):: {
    datasource: $.datasource,
    expr: expr,
    legendFormat: legend,
    range: !instant,
    instant: instant,
    format: format,
  },

  // [[color, from], ...] with the first `from` null (the base step).
  thresholds(steps):: {
    mode: 'absolute',
    steps: [{ color: s[0], value: s[1] } for s in steps],
  },

  // Panel skeleton: size hints (w, h) are read by layout(), which sets gridPos and id.
  panel(type, title, unit, targets, description='', w=12, h=8):: {
    type: type,
    title: title,
    description: description,
    datasource: $.datasource,
    targets: [targets[i] { refId: std.char(std.codepoint('A') + i) } for i in std.range(0, std.length(targets) - 1)],
    fieldConfig: { defaults: { unit: unit }, overrides: [] },
    options: {},
    links: [],
    w:: w,
    h:: h,
  },

  timeseries(title, unit, targets, description='', w=12, h=8, min=null, max=null, stack=false)::
    $.panel('timeseries', title, unit, targets, description, w, h) {
      fieldConfig+: {
        defaults+: {
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: if stack then 30 else 10,
            showPoints: 'never',
            spanNulls: false,
            stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
            thresholdsStyle: { mode: 'off' },
          },
          [if min != null then 'min']: min,
          [if max != null then 'max']: max,
        },
      },
      options: {
        legend: { displayMode: 'table', placement: 'bottom', showLegend: true, calcs: ['lastNotNull', 'max'] },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    },

  // Bars of counts per interval (rare events such as scaling actions).
  bars(title, unit, targets, description='', w=12, h=8)::
    $.timeseries(title, unit, targets, description, w, h, stack=true) {
      fieldConfig+: { defaults+: { custom+: { drawStyle: 'bars', fillOpacity: 80 } } },
    },

  stat(title, unit, targets, description='', w=4, h=4, colorMode='value')::
    $.panel('stat', title, unit, targets, description, w, h) {
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: colorMode,
        graphMode: 'area',
        justifyMode: 'auto',
        orientation: 'auto',
        textMode: 'auto',
      },
    },

  gauge(title, unit, targets, description='', w=6, h=6, min=0, max=100)::
    $.panel('gauge', title, unit, targets, description, w, h) {
      fieldConfig+: { defaults+: { min: min, max: max } },
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        showThresholdLabels: false,
        showThresholdMarkers: true,
      },
    },

  // One coloured band per series over time (pipeline states, up/down).
  stateTimeline(title, unit, targets, description='', w=24, h=8)::
    $.panel('state-timeline', title, unit, targets, description, w, h) {
      fieldConfig+: { defaults+: { custom: { fillOpacity: 80, lineWidth: 0 } } },
      options: {
        showValue: 'auto',
        mergeValues: true,
        rowHeight: 0.9,
        alignValue: 'left',
        legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
        tooltip: { mode: 'single', sort: 'none' },
      },
    },

  table(title, unit, targets, description='', w=24, h=8)::
    $.panel('table', title, unit, targets, description, w, h) {
      options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], fields: '' } },
    },

  // A full-width row header; panels after it belong to it.
  row(title):: {
    type: 'row',
    title: title,
    collapsed: false,
    panels: [],
    w:: 24,
    h:: 1,
  },

  // Mixins for panels.
  // For stats and gauges: the value coloured by its step.
  withThresholds(steps):: {
    fieldConfig+: { defaults+: { thresholds: $.thresholds(steps), color: { mode: 'thresholds' } } },
  },
  // For time series: threshold lines over palette-coloured series.
  withThresholdLines(steps):: {
    fieldConfig+: {
      defaults+: {
        thresholds: $.thresholds(steps),
        color: { mode: 'palette-classic' },
        custom+: { thresholdsStyle: { mode: 'line+area' } },
      },
    },
  },
  withMappings(mappings):: { fieldConfig+: { defaults+: { mappings: mappings } } },
  // value -> [text, color]
  valueMappings(texts):: [{
    type: 'value',
    options: { [k]: { text: texts[k][0], color: texts[k][1], index: std.parseInt(k) } for k in std.objectFields(texts) },
  }],
  withOverride(matcher, properties):: {
    fieldConfig+: { overrides+: [{ matcher: matcher, properties: properties }] },
  },
  // Series whose name matches `regex` on the right axis.
  withRightAxis(regex):: $.withOverride(
    { id: 'byRegexp', options: regex },
    [{ id: 'custom.axisPlacement', value: 'right' }],
  ),
  withLinks(links):: { links+: links },
  link(title, url):: { title: title, url: url, targetBlank: true },
  // Data links on every series of a panel (Grafana's ${__field.labels.x} variables).
  withDataLinks(links):: { fieldConfig+: { defaults+: { links+: [l { targetBlank: false } for l in links] } } },

  // Template variables.
  datasourceVariable:: {
    type: 'datasource',
    name: 'datasource',
    label: 'Data source',
    query: 'prometheus',
    regex: '',
    current: {},
    hide: 0,
    refresh: 1,
    skipUrlSync: false,
  },
  // label_values() query; multi-select with an "All" that matches any value
  // (.+ keeps the regex short on big fleets; other selectors still narrow it).
  queryVariable(name, label, selector, multi=true):: {
    type: 'query',
    name: name,
    label: label,
    datasource: $.datasource,
    query: { query: 'label_values(%s, %s)' % [selector, name], refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    definition: 'label_values(%s, %s)' % [selector, name],
    refresh: 2,  // on time range change: trees and nodes come and go
    sort: 1,
    multi: multi,
    includeAll: multi,
    [if multi then 'allValue']: '.+',
    current: {},
    options: [],
    regex: '',
    hide: 0,
    skipUrlSync: false,
  },

  // Prometheus annotation: one event/region per series the query returns.
  annotation(name, expr, title, text, tags, color):: {
    name: name,
    datasource: $.datasource,
    enable: true,
    hide: false,
    iconColor: color,
    expr: expr,
    step: '30s',
    titleFormat: title,
    textFormat: text,
    tagKeys: tags,
    useValueForTime: false,
  },

  // Flow layout on Grafana's 24-column grid: left to right, wrapping when a
  // panel does not fit; a row starts a new line. Lines never share cells, so
  // panels never overlap. Ids follow the order given.
  layout(panels)::
    local place(acc, p) =
      local wrap = p.type == 'row' || acc.x + p.w > 24;
      local x = if wrap then 0 else acc.x;
      local y = if wrap then acc.y + acc.lineH else acc.y;
      {
        x: x + p.w,
        y: y,
        lineH: if wrap then p.h else std.max(acc.lineH, p.h),
        out: acc.out + [p { id: std.length(acc.out) + 1, gridPos: { x: x, y: y, w: p.w, h: p.h } }],
      };
    std.foldl(place, panels, { x: 0, y: 0, lineH: 0, out: [] }).out,

  dashboard(title, uid, description, variables, panels, annotations=[], links=[]):: {
    uid: uid,
    title: title,
    description: description,
    tags: ['canopy', 'media-tree'],
    editable: true,
    graphTooltip: 1,  // shared crosshair
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-6h', to: 'now' },
    timepicker: {},
    timezone: 'utc',
    refresh: '30s',
    fiscalYearStartMonth: 0,
    liveNow: false,
    templating: { list: [$.datasourceVariable] + variables },
    annotations: { list: annotations },
    links: links,
    panels: $.layout(panels),
  },

  // The UI-import form (Dashboards > Import, grafana.com): the datasource is an
  // __inputs entry instead of a variable. REFERENCE.md: never both in one file.
  forImport(d)::
    local imported = { type: 'prometheus', uid: '${DS_PROMETHEUS}' };
    local swap(x) =
      if std.isObject(x) then
        if x == $.datasource then imported else { [k]: swap(x[k]) for k in std.objectFields(x) }
      else if std.isArray(x) then std.map(swap, x)
      else x;
    local types = std.set([p.type for p in d.panels if p.type != 'row']);
    swap(d {
      templating+: { list: [v for v in super.list if v.type != 'datasource'] },
    }) {
      __inputs: [{
        name: 'DS_PROMETHEUS',
        label: 'Prometheus',
        description: 'The Prometheus that scrapes the media tree and evaluates the Canopy rule pack',
        type: 'datasource',
        pluginId: 'prometheus',
        pluginName: 'Prometheus',
      }],
      __requires: [
        { type: 'grafana', id: 'grafana', name: 'Grafana', version: '10.4.0' },
        { type: 'datasource', id: 'prometheus', name: 'Prometheus', version: '1.0.0' },
      ] + [{ type: 'panel', id: t, name: t, version: '' } for t in types],
    },
}
