{{/*
Labels (conventions.md): app.kubernetes.io/{name,instance,component,version,managed-by,part-of} and
helm.sh/chart; selectors use only name, instance and component.
*/}}

{{/* Selector labels: name, instance and (when given) component.
Usage: {{ include "nova-common.selectorLabels" (dict "ctx" $ "name" "nova-redis" "component" "redis") }} */}}
{{- define "nova-common.selectorLabels" -}}
{{- if not .name -}}
{{- fail "nova-common.selectorLabels: pass (dict \"ctx\" $ \"name\" \"<chart name>\" \"component\" \"<component>\")" -}}
{{- end -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/* Standard labels: the selector labels, version (.version, else the appVersion), managed-by, part-of,
helm.sh/chart, then global.labels and the chart's commonLabels.
Usage: {{ include "nova-common.labels" (dict "ctx" $ "name" "nova-redis" "component" "redis" "version" "7.2.5") }} */}}
{{- define "nova-common.labels" -}}
{{ include "nova-common.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .ctx.Chart.AppVersion .version) | toString | replace "@" "_" | replace ":" "_" | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: nova
helm.sh/chart: {{ include "nova-common.chart" . }}
{{- with (.ctx.Values.global).labels }}
{{ toYaml . }}
{{- end }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
