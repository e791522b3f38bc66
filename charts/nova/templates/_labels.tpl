{{/* Selector labels (name, instance, and component when given: an empty one selects every pod of the chart).
Usage: {{ include "nova.selectorLabels" (dict "ctx" $ "component" "user-service") }} */}}
{{- define "nova.selectorLabels" -}}
{{- include "nova-common.selectorLabels" (dict "ctx" .ctx "name" (include "nova.name" .ctx) "component" .component) -}}
{{- end -}}

{{/* Standard labels; .version (an image tag) becomes app.kubernetes.io/version.
Usage: {{ include "nova.labels" (dict "ctx" $ "component" "user-service" "version" "1.2.3") }} */}}
{{- define "nova.labels" -}}
{{- include "nova-common.labels" (dict "ctx" .ctx "name" (include "nova.name" .ctx) "component" .component "version" .version) -}}
{{- end -}}
