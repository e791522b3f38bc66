{{/*
Prometheus Operator objects (ServiceMonitor, PrometheusRule) and Grafana dashboard ConfigMaps, shared by the
three charts. Every chart reads the same keys: metrics.enabled, metrics.serviceMonitor.*, metrics.prometheusRule.*,
metrics.dashboards.*, metrics.assumeCRDs, and the umbrella-wide global.metrics.enabled / global.metrics.assumeCRDs.
*/}}

{{/* "true" when the chart's metrics are on: metrics.enabled, or global.metrics.enabled (the umbrella switch).
Usage: {{ if eq (include "nova-common.metrics.enabled" $) "true" }} */}}
{{- define "nova-common.metrics.enabled" -}}
{{- $global := dig "metrics" "enabled" false (default dict .Values.global) -}}
{{- ternary "true" "false" (or (dig "enabled" false (default dict .Values.metrics)) $global) -}}
{{- end -}}

{{/* "true" when objects of the monitoring.coreos.com/v1 kind .kind may be rendered: the API is in .Capabilities
(helm install/upgrade against a cluster that has the CRDs), or the user opted in with metrics.assumeCRDs /
global.metrics.assumeCRDs (helm template, Argo CD, Flux: the render cannot see the cluster).
Usage: {{ if eq (include "nova-common.monitoring.crd" (dict "ctx" $ "kind" "ServiceMonitor")) "true" }} */}}
{{- define "nova-common.monitoring.crd" -}}
{{- $ctx := .ctx -}}
{{- $assume := or (dig "assumeCRDs" false (default dict $ctx.Values.metrics)) (dig "metrics" "assumeCRDs" false (default dict $ctx.Values.global)) -}}
{{- ternary "true" "false" (or $assume ($ctx.Capabilities.APIVersions.Has (printf "monitoring.coreos.com/v1/%s" .kind))) -}}
{{- end -}}

{{/* The kinds (ServiceMonitor, PrometheusRule) asked for but skipped for want of the CRD, as a JSON list.
Usage: {{ include "nova-common.monitoring.skipped" $ | fromJsonArray }} */}}
{{- define "nova-common.monitoring.skipped" -}}
{{- $m := default dict .Values.metrics -}}
{{- $skipped := list -}}
{{- if eq (include "nova-common.metrics.enabled" .) "true" -}}
{{- range $kind, $key := dict "ServiceMonitor" "serviceMonitor" "PrometheusRule" "prometheusRule" -}}
{{- if and (dig $key "enabled" true $m) (ne (include "nova-common.monitoring.crd" (dict "ctx" $ "kind" $kind)) "true") -}}
{{- $skipped = append $skipped $kind -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $skipped -}}
{{- end -}}

{{/* The NOTES.txt warning for monitoring objects that were asked for but skipped (empty when none was).
.charts: list of {ctx, prefix} (prefix "redis." for a subchart's values seen from the umbrella).
Usage: {{ include "nova-common.monitoring.notes" (dict "charts" (list (dict "ctx" $ "prefix" ""))) }} */}}
{{- define "nova-common.monitoring.notes" -}}
{{- $skipped := list -}}
{{- $kinds := dict -}}
{{- range .charts -}}
{{- $k := include "nova-common.monitoring.skipped" .ctx | fromJsonArray -}}
{{- if $k -}}
{{- $skipped = append $skipped (printf "%smetrics" .prefix) -}}
{{- range $k }}{{ $_ := set $kinds . true }}{{ end -}}
{{- end -}}
{{- end -}}
{{- if $skipped }}

WARNING: {{ join ", " $skipped }} {{ ternary "is" "are" (eq (len $skipped) 1) }} on but the {{ keys $kinds | sortAlpha | join " and " }} objects were
NOT rendered: the monitoring.coreos.com/v1 API is not visible to this render (no Prometheus Operator CRDs, or
helm template / a GitOps tool that cannot see the cluster). Install the CRDs, or set {{ range $i, $s := $skipped }}{{ if $i }}, {{ end }}{{ $s }}.assumeCRDs=true{{ end }}
(global.metrics.assumeCRDs=true for every chart) to render them anyway.
{{- end -}}
{{- end -}}

{{/* A ServiceMonitor for one Service port. Usage:
{{ include "nova-common.serviceMonitor" (dict "ctx" $ "name" $name "namespace" $ns "labels" $labelsYaml "selector" $selectorYaml "port" "metrics" "path" "/metrics") }}
Settings come from .ctx.Values.metrics.serviceMonitor (interval, scrapeTimeout, labels). */}}
{{- define "nova-common.serviceMonitor" -}}
{{- $sm := .ctx.Values.metrics.serviceMonitor -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ .name }}
  namespace: {{ .namespace }}
  labels:
    {{- .labels | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  namespaceSelector:
    matchNames: [{{ .namespace }}]
  selector:
    matchLabels:
      {{- .selector | nindent 6 }}
  endpoints:
    - port: {{ .port }}
      path: {{ default "/metrics" .path }}
      interval: {{ $sm.interval }}
      {{- with $sm.scrapeTimeout }}
      scrapeTimeout: {{ . }}
      {{- end }}
{{- end -}}

{{/* A PrometheusRule from a chart file of rule groups (rendered with tpl; the file sees .Values, .Release and
$.Monitoring = .extra). Usage:
{{ include "nova-common.prometheusRule" (dict "ctx" $ "name" $name "namespace" $ns "labels" $labelsYaml "file" "files/alerts.yaml") }} */}}
{{- define "nova-common.prometheusRule" -}}
{{- $pr := .ctx.Values.metrics.prometheusRule -}}
{{- $groups := tpl (.ctx.Files.Get .file) .ctx | fromYaml -}}
{{- if hasKey $groups "Error" -}}
{{- fail (printf "%s does not render to YAML: %s" .file (get $groups "Error")) -}}
{{- end -}}
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: {{ .name }}
  namespace: {{ .namespace }}
  labels:
    {{- .labels | nindent 4 }}
    {{- with $pr.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- toYaml $groups | nindent 2 }}
{{- end -}}

{{/* The runbook_url of an alert: metrics.prometheusRule.runbookBaseUrl + "/" + the alert + ".md".
Usage: {{ include "nova-common.runbook" (dict "ctx" $ "alert" "NovaRedisNoMaster") }} */}}
{{- define "nova-common.runbook" -}}
{{- printf "%s/%s.md" (trimSuffix "/" .ctx.Values.metrics.prometheusRule.runbookBaseUrl) .alert -}}
{{- end -}}

{{/* One ConfigMap per Grafana dashboard file under .dir (files/dashboards/*.json), with the sidecar label(s)
of metrics.dashboards.labels. Usage:
{{ include "nova-common.dashboards" (dict "ctx" $ "prefix" $fullname "namespace" $ns "labels" $labelsYaml) }} */}}
{{- define "nova-common.dashboards" -}}
{{- $ctx := .ctx -}}
{{- $d := $ctx.Values.metrics.dashboards -}}
{{- $top := . -}}
{{- range $path, $_ := $ctx.Files.Glob "files/dashboards/*.json" }}
{{- $base := base $path | trimSuffix ".json" }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ printf "%s-dashboard-%s" $top.prefix $base | trunc 63 | trimSuffix "-" }}
  namespace: {{ default $top.namespace $d.namespace }}
  labels:
    {{- $top.labels | nindent 4 }}
    {{- with $d.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $d.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
data:
  {{ base $path }}: |
    {{- $ctx.Files.Get $path | nindent 4 }}
{{- end }}
{{- end -}}
