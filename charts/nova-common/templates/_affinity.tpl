{{/*
Scheduling: pod anti-affinity (soft or hard) and topology spread, over a component's selector labels.
*/}}

{{/* affinity of a pod: .custom when set (used as is), else podAntiAffinity by .mode: "soft" (preferred, weight
100), "hard" (required), "none" or "" (nothing). .key names the mode's value for the error.
Usage: {{- with include "nova-common.affinity" (dict "mode" "soft" "selector" $selector "topologyKey" "kubernetes.io/hostname" "key" "affinity.podAntiAffinity") }}{{ . | nindent 6 }}{{ end }} */}}
{{- define "nova-common.affinity" -}}
{{- $mode := toString .mode -}}
{{- $topologyKey := default "kubernetes.io/hostname" .topologyKey -}}
{{- if .custom -}}
affinity:
  {{- toYaml .custom | nindent 2 }}
{{- else if eq $mode "hard" -}}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: {{ $topologyKey }}
        labelSelector:
          matchLabels:
            {{- toYaml .selector | nindent 12 }}
{{- else if eq $mode "soft" -}}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: {{ $topologyKey }}
          labelSelector:
            matchLabels:
              {{- toYaml .selector | nindent 14 }}
{{- else if not (has $mode (list "none" "")) -}}
{{- fail (printf "%s=%s: use soft, hard or none" (default "podAntiAffinity" .key) $mode) -}}
{{- end -}}
{{- end -}}

{{/* topologySpreadConstraints of a pod: one constraint per topology key over the selector labels; nothing
when .topologyKeys is empty.
Usage: {{- with include "nova-common.topologySpread" (dict "selector" $selector "topologyKeys" (list "topology.kubernetes.io/zone") "maxSkew" 1 "whenUnsatisfiable" "ScheduleAnyway") }}{{ . | nindent 6 }}{{ end }} */}}
{{- define "nova-common.topologySpread" -}}
{{- if .topologyKeys -}}
topologySpreadConstraints:
{{- range .topologyKeys }}
  - maxSkew: {{ $.maxSkew | default 1 }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $.whenUnsatisfiable | default "ScheduleAnyway" }}
    labelSelector:
      matchLabels:
        {{- toYaml $.selector | nindent 8 }}
{{- end }}
{{- end -}}
{{- end -}}
