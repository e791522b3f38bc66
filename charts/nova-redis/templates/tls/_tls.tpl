{{/*
TLS of nova-redis (docs/tls.md): where the certificate is mounted and the names it must carry. The switch is
nova-common.tls.enabled (tls.enabled or global.tls.enabled); with it on every port is TLS only.
*/}}

{{/* Mount path of the TLS Secret in the redis, sentinel, exporter and haproxy containers.
Usage: {{ include "nova-redis.tls.dir" . }} */}}
{{- define "nova-redis.tls.dir" -}}
/etc/nova-tls
{{- end -}}

{{/* Name of the Secret with tls.crt, tls.key, ca.crt. Usage: {{ include "nova-redis.tls.secretName" . }} */}}
{{- define "nova-redis.tls.secretName" -}}
{{- include "nova-common.tls.secretName" (dict "ctx" . "fullname" (include "nova-redis.fullname" .)) -}}
{{- end -}}

{{/* DNS names of the certificate, as a YAML list: the -master and -sentinel Services (short, namespaced and full
forms), every pod under the headless Service (replication, Sentinel's links, HAProxy's servers), localhost.
Usage: {{ include "nova-redis.tls.dnsNames" . | fromYamlArray }} */}}
{{- define "nova-redis.tls.dnsNames" -}}
{{- $ns := include "nova-redis.namespace" . -}}
{{- $fullname := include "nova-redis.fullname" . -}}
{{- $names := list -}}
{{- range $svc := list (include "nova-redis.master.fullname" .) (include "nova-redis.sentinel.fullname" .) -}}
{{- $names = concat $names (list (printf "%s.%s.svc.%s" $svc $ns $.Values.clusterDomain) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s" $svc $ns) $svc) -}}
{{- end -}}
{{- range $i := until (int .Values.replicas) -}}
{{- $names = append $names (printf "%s-%d.%s.%s.svc.%s" $fullname $i (include "nova-redis.headless" $) $ns $.Values.clusterDomain) -}}
{{- end -}}
{{- $names = append $names "localhost" -}}
{{- toYaml $names -}}
{{- end -}}
