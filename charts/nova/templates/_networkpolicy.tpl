{{/*
NetworkPolicy building blocks of the umbrella, on nova-common's peers, ports and DNS egress.
*/}}

{{/* NetworkPolicy peer: the pods of a dependency subchart (contract labels name/instance) in its namespace.
Usage: {{ include "nova.netpol.dependencyPeer" (dict "ctx" $ "name" "nova-redis" "namespace" "nova-redis") }} */}}
{{- define "nova.netpol.dependencyPeer" -}}
{{- include "nova-common.netpol.peer" (dict "namespace" .namespace "labels" (dict "app.kubernetes.io/name" .name "app.kubernetes.io/instance" .ctx.Release.Name)) -}}
{{- end -}}

{{/* NetworkPolicy egress rule to the Redis pods and the master proxy: Redis and Sentinel ports only. Usage: {{ include "nova.netpol.redisEgress" $ }} */}}
{{- define "nova.netpol.redisEgress" -}}
- to:
    {{- include "nova.netpol.dependencyPeer" (dict "ctx" . "name" "nova-redis" "namespace" (include "nova.redis.namespace" .)) | nindent 4 }}
  ports:
    {{- include "nova-common.netpol.ports" (dict "ports" (list (include "nova.redis.port" .) (int (dig "sentinel" "port" 26379 .Values.redis))) "protocol" "TCP") | nindent 4 }}
{{- end -}}

{{/* NetworkPolicy egress rule to the PostgreSQL pods: the PostgreSQL port only. Usage: {{ include "nova.netpol.postgresEgress" $ }} */}}
{{- define "nova.netpol.postgresEgress" -}}
- to:
    {{- include "nova.netpol.dependencyPeer" (dict "ctx" . "name" "nova-postgres" "namespace" (include "nova.postgres.namespace" .)) | nindent 4 }}
  ports:
    {{- include "nova-common.netpol.ports" (dict "ports" (list (include "nova.postgres.port" .)) "protocol" "TCP") | nindent 4 }}
{{- end -}}

{{/* NetworkPolicy egress rule of the helm test pods to the PostgreSQL pods: the PostgreSQL port, and the pooler's
when the services go through it (the tests check both the services' path and the primary itself).
Usage: {{ include "nova.netpol.postgresTestEgress" $ }} */}}
{{- define "nova.netpol.postgresTestEgress" -}}
{{- $ports := list (include "nova.postgres.port" .) -}}
{{- if eq (include "nova.postgres.pooled" .) "true" }}{{ $ports = append $ports (int (dig "postgresql" "port" 5432 .Values.postgres)) }}{{ end -}}
- to:
    {{- include "nova.netpol.dependencyPeer" (dict "ctx" . "name" "nova-postgres" "namespace" (include "nova.postgres.namespace" .)) | nindent 4 }}
  ports:
    {{- include "nova-common.netpol.ports" (dict "ports" $ports "protocol" "TCP") | nindent 4 }}
{{- end -}}

{{/* NetworkPolicy egress rule to DNS (networkPolicy.dns). Usage: {{ include "nova.netpol.dnsEgress" $ }} */}}
{{- define "nova.netpol.dnsEgress" -}}
{{- include "nova-common.netpol.dnsEgress" .Values.networkPolicy.dns -}}
{{- end -}}

{{/* NetworkPolicy peer: pods of this chart in the services namespace with a component label.
Usage: {{ include "nova.netpol.componentPeer" (dict "ctx" $ "component" "user-service") }} */}}
{{- define "nova.netpol.componentPeer" -}}
{{- $labels := dict "app.kubernetes.io/name" (include "nova.name" .ctx) "app.kubernetes.io/instance" .ctx.Release.Name -}}
{{- with .component }}{{ $_ := set $labels "app.kubernetes.io/component" . }}{{ end -}}
{{- include "nova-common.netpol.peer" (dict "namespace" (include "nova.servicesNamespace" .ctx) "labels" $labels) -}}
{{- end -}}
