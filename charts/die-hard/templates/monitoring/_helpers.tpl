{{/*
The names of this release's metrics Services, `<fullname>-<role>-metrics`, one per role that
runs: web and worker always, beat and relay when enabled.
*/}}
{{- define "die-hard.metricsServiceNames" -}}
{{- $roles := list "web" "worker" }}
{{- if .Values.beat.enabled }}{{ $roles = append $roles "beat" }}{{ end }}
{{- if .Values.relay.enabled }}{{ $roles = append $roles "relay" }}{{ end }}
{{- $names := list }}
{{- range $roles }}
{{- $names = append $names (include "die-hard.componentName" (dict "context" $ "component" (printf "%s-metrics" .))) }}
{{- end }}
{{- join "," $names }}
{{- end }}

{{/*
The PromQL label matchers of this release's series: its namespace, and the jobs Prometheus
names after the metrics Services the ServiceMonitor scrapes. Alerts and the KEDA trigger see
this release only, however many run in the cluster.
*/}}
{{- define "die-hard.promSelector" -}}
{{- $jobs := splitList "," (include "die-hard.metricsServiceNames" .) }}
{{- printf "namespace=%q, job=~%q" .Release.Namespace (join "|" $jobs) }}
{{- end }}

{{/* Labels of a monitoring object: the chart's, then `extra` (a values map): (dict "context" $ "extra" .labels). */}}
{{- define "die-hard.monitoringLabels" -}}
{{- $labels := fromYaml (include "die-hard.labels" (dict "context" .context "component" "monitoring")) }}
{{- toYaml (merge (dict) (.extra | default dict) $labels) }}
{{- end }}

{{/* Monitoring objects scrape the metrics endpoints: refuse them when those are off. */}}
{{- define "die-hard.requireMetrics" -}}
{{- $metrics := .context.Values.metrics | default dict }}
{{- if and (hasKey $metrics "enabled") (not $metrics.enabled) }}
{{- fail (printf "%s needs the metrics endpoints: set metrics.enabled=true" .what) }}
{{- end }}
{{- end }}
