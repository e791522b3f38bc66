{{/*
nova-postgres specifics: the credentials Secret, Patroni's scope and etcd endpoints, login env names.
*/}}

{{/* Credentials Secret name (existingSecret through tpl, else <fullname>-credentials).
Usage: {{ include "nova-postgres.secretName" . }} */}}
{{- define "nova-postgres.secretName" -}}
{{- if .Values.auth.existingSecret -}}
{{- tpl .Values.auth.existingSecret . -}}
{{- else -}}
{{- include "nova-postgres.name.suffixed" (dict "ctx" . "suffix" "credentials") -}}
{{- end -}}
{{- end -}}

{{/* Patroni scope (cluster name in the DCS). Usage: {{ include "nova-postgres.scope" . }} */}}
{{- define "nova-postgres.scope" -}}
{{- default (include "nova-postgres.fullname" .) .Values.patroni.scope -}}
{{- end -}}

{{/* etcd client endpoints (host:port list) Patroni connects to: the members, or etcd.externalHosts.
Usage: {{ include "nova-postgres.etcd.hosts" . }} */}}
{{- define "nova-postgres.etcd.hosts" -}}
{{- if .Values.etcd.enabled -}}
{{- $fullname := include "nova-postgres.etcd.fullname" . -}}
{{- $peer := include "nova-postgres.etcd.peerService" . -}}
{{- $ns := include "nova-postgres.namespace" . -}}
{{- $hosts := list -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $hosts = append $hosts (printf "%s-%d.%s.%s.svc.%s:%d" $fullname $i $peer $ns $.Values.clusterDomain (int $.Values.etcd.clientPort)) -}}
{{- end -}}
{{- join "," $hosts -}}
{{- else -}}
{{- if not .Values.etcd.externalHosts -}}
{{- fail "nova-postgres: etcd.enabled is false, so set etcd.externalHosts (host:port list of an etcd v3 cluster)" -}}
{{- end -}}
{{- join "," .Values.etcd.externalHosts -}}
{{- end -}}
{{- end -}}

{{/* Environment name holding a login's password. Usage: {{ include "nova-postgres.loginEnv" "user_service" }} */}}
{{- define "nova-postgres.loginEnv" -}}
{{- printf "NOVA_LOGIN_PASSWORD_%s" (upper .) -}}
{{- end -}}

{{/*
The metrics scrape targets: a YAML list of {service, monitor, component, selects, port, targetPort}; the
Service name is the Prometheus job label of the target (files/alerts.yaml selects on it).
Usage: {{ range include "nova-postgres.metrics.targets" . | fromYamlArray }}
*/}}
{{- define "nova-postgres.metrics.targets" -}}
{{- $fullname := include "nova-postgres.fullname" . -}}
- {service: {{ include "nova-postgres.name.suffixed" (dict "ctx" . "suffix" "metrics") }}, monitor: {{ $fullname }}, component: metrics, selects: postgres, port: 9187, targetPort: metrics}
- {service: {{ include "nova-postgres.name.suffixed" (dict "ctx" . "suffix" "patroni-metrics") }}, monitor: {{ include "nova-postgres.name.suffixed" (dict "ctx" . "suffix" "patroni") }}, component: patroni-metrics, selects: postgres, port: {{ .Values.patroni.restApiPort }}, targetPort: patroni}
{{- if .Values.etcd.enabled }}
- {service: {{ include "nova-postgres.name.suffixed" (dict "ctx" . "suffix" "etcd-metrics") }}, monitor: {{ include "nova-postgres.name.suffixed" (dict "ctx" . "suffix" "etcd") }}, component: etcd-metrics, selects: etcd, port: {{ .Values.etcd.metricsPort }}, targetPort: metrics}
{{- end }}
{{- end -}}
