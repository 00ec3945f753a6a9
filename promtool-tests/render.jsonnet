// `canopy render` writes each suite as <name>.test.yaml beside it.
{
  'recording.test.yaml': import 'recording.jsonnet',
  'scale-out.test.yaml': import 'scale-out.jsonnet',
  'scale-in.test.yaml': import 'scale-in.jsonnet',
  'operational.test.yaml': import 'operational.jsonnet',
  'actuator.test.yaml': import 'actuator.jsonnet',
  'sizing.test.yaml': import 'sizing.jsonnet',
  'forecast.test.yaml': import 'forecast.jsonnet',
  // The forecast is opt-in: its suite runs on the pack with it on.
  'forecast-rules.yaml': (import '../rules/mixin.libsonnet') { _config+:: { forecastScaleOut: true } }.prometheusRules,
}
