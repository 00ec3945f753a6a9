(import 'lib.libsonnet').file([])
