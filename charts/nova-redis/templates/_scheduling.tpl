{{/* Pod anti-affinity (affinity.podAntiAffinity soft/hard/none, or affinity.custom) and topology spread
(topologySpread.*) of a component. Usage: {{ include "nova-redis.scheduling" (dict "ctx" $ "component" "redis") }} */}}
{{- define "nova-redis.scheduling" -}}
{{- $values := .ctx.Values -}}
{{- $selector := include "nova-redis.selectorLabels" . | fromYaml -}}
{{- $spread := $values.topologySpread -}}
{{- with include "nova-common.affinity" (dict "mode" $values.affinity.podAntiAffinity "custom" $values.affinity.custom "selector" $selector "topologyKey" $values.affinity.topologyKey "key" "affinity.podAntiAffinity") }}
{{ . }}
{{- end }}
{{- if $spread.enabled }}
{{ include "nova-common.topologySpread" (dict "selector" $selector "topologyKeys" (list $spread.topologyKey) "maxSkew" $spread.maxSkew "whenUnsatisfiable" $spread.whenUnsatisfiable) }}
{{- end }}
{{- end -}}
