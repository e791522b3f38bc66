{{/* Pod anti-affinity (affinity.podAntiAffinity soft/hard/none, or the component's own complete .affinity:
redis.affinity, masterProxy.affinity) and topology spread (topologySpread.*) of a component.
Usage: {{ include "nova-redis.scheduling" (dict "ctx" $ "component" "redis" "affinity" .Values.redis.affinity) }} */}}
{{- define "nova-redis.scheduling" -}}
{{- $values := .ctx.Values -}}
{{- $selector := include "nova-redis.selectorLabels" (dict "ctx" .ctx "component" .component) | fromYaml -}}
{{- $spread := $values.topologySpread -}}
{{- with include "nova-common.affinity" (dict "mode" $values.affinity.podAntiAffinity "custom" .affinity "selector" $selector "topologyKey" $values.affinity.topologyKey "key" "affinity.podAntiAffinity") }}
{{ . }}
{{- end }}
{{- if $spread.enabled }}
{{ include "nova-common.topologySpread" (dict "selector" $selector "topologyKeys" (list $spread.topologyKey) "maxSkew" $spread.maxSkew "whenUnsatisfiable" $spread.whenUnsatisfiable) }}
{{- end }}
{{- end -}}
