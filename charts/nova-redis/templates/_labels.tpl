{{/*
Labels of the nova-redis chart. The name label is always nova-redis (not .Chart.Name, which Helm replaces
with the alias `redis` under the umbrella, whose NetworkPolicies select app.kubernetes.io/name=nova-redis);
helm.sh/chart is nova-redis-<version> for the same reason.
*/}}

{{/* Selector labels (name, instance, component). Usage: {{ include "nova-redis.selectorLabels" (dict "ctx" $ "component" "redis") }} */}}
{{- define "nova-redis.selectorLabels" -}}
{{- include "nova-common.selectorLabels" (dict "ctx" .ctx "name" "nova-redis" "component" (required "nova-redis.selectorLabels: component is required" .component)) -}}
{{- end -}}

{{/* Standard labels. Usage: {{ include "nova-redis.labels" (dict "ctx" $ "component" "redis") }} */}}
{{- define "nova-redis.labels" -}}
{{- include "nova-common.labels" (dict "ctx" .ctx "name" "nova-redis" "component" (required "nova-redis.labels: component is required" .component)) -}}
{{- end -}}
