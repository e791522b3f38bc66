{{/* affinity of a component's pods: podAntiAffinity "soft" (preferred), "hard" (required) or "" (none), per node.
Usage: {{ include "nova-postgres.affinity" (dict "ctx" $ "component" "postgres" "mode" .Values.podAntiAffinity "key" "podAntiAffinity") }} */}}
{{- define "nova-postgres.affinity" -}}
{{- $selector := include "nova-postgres.selectorLabels" (dict "ctx" .ctx "component" .component) | fromYaml -}}
{{- include "nova-common.affinity" (dict "mode" .mode "selector" $selector "topologyKey" "kubernetes.io/hostname" "key" .key) -}}
{{- end -}}
