{{/* Selector labels. Usage: {{ include "nova-postgres.selectorLabels" (dict "ctx" $ "component" "postgres") }} */}}
{{- define "nova-postgres.selectorLabels" -}}
{{- if not .component -}}
{{- fail "nova-postgres.selectorLabels: pass (dict \"ctx\" $ \"component\" \"<name>\")" -}}
{{- end -}}
{{- include "nova-common.selectorLabels" (dict "ctx" .ctx "name" "nova-postgres" "component" .component) -}}
{{- end -}}

{{/* Standard labels; helm.sh/chart is nova-postgres-<version> under the umbrella too.
Usage: {{ include "nova-postgres.labels" (dict "ctx" $ "component" "postgres") }} */}}
{{- define "nova-postgres.labels" -}}
{{- if not .component -}}
{{- fail "nova-postgres.labels: pass (dict \"ctx\" $ \"component\" \"<name>\")" -}}
{{- end -}}
{{- include "nova-common.labels" (dict "ctx" .ctx "name" "nova-postgres" "component" .component) -}}
{{- end -}}
