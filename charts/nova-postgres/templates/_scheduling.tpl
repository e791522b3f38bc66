{{/* affinity of a component's pods: podAntiAffinity "soft" (preferred), "hard" (required) or "" (none), per node;
a complete .custom affinity (affinity, etcd.affinity) replaces it.
Usage: {{ include "nova-postgres.affinity" (dict "ctx" $ "component" "postgres" "mode" .Values.podAntiAffinity "custom" .Values.affinity "key" "podAntiAffinity") }} */}}
{{- define "nova-postgres.affinity" -}}
{{- $selector := include "nova-postgres.selectorLabels" (dict "ctx" .ctx "component" .component) | fromYaml -}}
{{- include "nova-common.affinity" (dict "mode" .mode "selector" $selector "topologyKey" "kubernetes.io/hostname" "custom" .custom "key" .key) -}}
{{- end -}}

{{/* topologySpreadConstraints of a component's pods: .custom (a complete list: topologySpreadConstraints,
etcd.topologySpreadConstraints) when set, else one constraint over .spread.topologyKey (zones) on the component's
selector labels, from .spread (enabled, maxSkew, whenUnsatisfiable, minDomains; .key names that values block),
through nova-common.topologySpread; nothing when .spread.enabled is false.
Usage: {{ include "nova-postgres.topologySpread" (dict "ctx" $ "component" "etcd" "spread" $e.topologySpread "custom" $e.topologySpreadConstraints "key" "etcd.topologySpread") }} */}}
{{- define "nova-postgres.topologySpread" -}}
{{- if .custom -}}
topologySpreadConstraints:
  {{- toYaml .custom | nindent 2 }}
{{- else if .spread.enabled -}}
{{- $selector := include "nova-postgres.selectorLabels" (dict "ctx" .ctx "component" .component) | fromYaml -}}
{{- $out := include "nova-common.topologySpread" (dict "selector" $selector "topologyKeys" (list .spread.topologyKey) "maxSkew" .spread.maxSkew "whenUnsatisfiable" .spread.whenUnsatisfiable) | fromYaml -}}
{{- if .spread.minDomains -}}
{{- if ne .spread.whenUnsatisfiable "DoNotSchedule" -}}
{{- fail (printf "nova-postgres: %s.minDomains needs %s.whenUnsatisfiable=DoNotSchedule (Kubernetes refuses minDomains with ScheduleAnyway)" .key .key) -}}
{{- end -}}
{{- $_ := set (first $out.topologySpreadConstraints) "minDomains" (int .spread.minDomains) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}
{{- end -}}
