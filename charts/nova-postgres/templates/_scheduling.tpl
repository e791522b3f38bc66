{{/* affinity of a component's pods: podAntiAffinity "soft" (preferred), "hard" (required) or "" (none), per node;
a complete .custom affinity (affinity, etcd.affinity) replaces it.
Usage: {{ include "nova-postgres.affinity" (dict "ctx" $ "component" "postgres" "mode" .Values.podAntiAffinity "custom" .Values.affinity "key" "podAntiAffinity") }} */}}
{{- define "nova-postgres.affinity" -}}
{{- $selector := include "nova-postgres.selectorLabels" (dict "ctx" .ctx "component" .component) | fromYaml -}}
{{- include "nova-common.affinity" (dict "mode" .mode "selector" $selector "topologyKey" "kubernetes.io/hostname" "custom" .custom "key" .key) -}}
{{- end -}}
