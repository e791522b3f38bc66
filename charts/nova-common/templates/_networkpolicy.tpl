{{/*
NetworkPolicy building blocks: peers, ports, DNS egress.
*/}}

{{/* One NetworkPolicy peer: pods with .labels, in the namespace named .namespace (by its
kubernetes.io/metadata.name label), or in the policy's own namespace when .namespace is empty.
Usage: {{- include "nova-common.netpol.peer" (dict "namespace" "nova-redis" "labels" $selector) | nindent 8 }} */}}
{{- define "nova-common.netpol.peer" -}}
{{- if .namespace -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .namespace }}
  podSelector:
    matchLabels:
      {{- toYaml .labels | nindent 6 }}
{{- else -}}
- podSelector:
    matchLabels:
      {{- toYaml .labels | nindent 6 }}
{{- end -}}
{{- end -}}

{{/* The ports of a NetworkPolicy rule (numbers or names), each with .protocol when given.
Usage: ports: {{- include "nova-common.netpol.ports" (dict "ports" (list "redis" 26379) "protocol" "TCP") | nindent 8 }} */}}
{{- define "nova-common.netpol.ports" -}}
{{- range .ports }}
- port: {{ . }}
  {{- with $.protocol }}
  protocol: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* An egress rule to the cluster DNS (port 53, UDP and TCP), selected by namespace and pod labels.
Usage: {{- include "nova-common.netpol.dnsEgress" (dict "namespaceSelector" $ns "podSelector" $pods) | nindent 4 }} */}}
{{- define "nova-common.netpol.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          {{- toYaml .namespaceSelector | nindent 10 }}
      podSelector:
        matchLabels:
          {{- toYaml .podSelector | nindent 10 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end -}}
