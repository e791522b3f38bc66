{{/*
nova-postgres specifics: the credentials Secret, Patroni's scope and etcd endpoints, login env names.
*/}}

{{/* Credentials Secret name (existingSecret through tpl, else <fullname>-credentials).
Usage: {{ include "nova-postgres.secretName" . }} */}}
{{- define "nova-postgres.secretName" -}}
{{- if .Values.auth.existingSecret -}}
{{- include "nova-common.tplValue" (dict "value" .Values.auth.existingSecret "ctx" .) -}}
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

{{/* PGDATA inside the container: <postgresql.dataMountPath>/pgroot/data, the data_dir of patroni.yml (a unit test
holds the two equal). Usage: {{ include "nova-postgres.dataDir" . }} */}}
{{- define "nova-postgres.dataDir" -}}
{{- printf "%s/pgroot/data" .Values.postgresql.dataMountPath -}}
{{- end -}}

{{/* etcd --quota-backend-bytes, in bytes: etcd.quotaBackendBytes, or when it is 0 computed from
etcd.persistence.size. A volume holds the db (up to the quota), a full copy of it while a member receives a
snapshot from the leader, and the WAL (at most 3 x 64 MiB segments with --max-wals=2, --snapshot-count=10000):
quota <= (size - 192Mi) / 2. The computed quota is that bound, capped at 8 GiB (etcd's suggested maximum); an
explicit quota above it fails, naming both keys. Usage: {{ include "nova-postgres.etcd.quotaBytes" . }} */}}
{{- define "nova-postgres.etcd.quotaBytes" -}}
{{- $e := .Values.etcd -}}
{{- $milli := include "nova-common.quantity.milli" $e.persistence.size -}}
{{- if not $milli -}}
{{- fail (printf "nova-postgres: etcd.persistence.size=%v is not a Kubernetes quantity (e.g. 1Gi)" $e.persistence.size) -}}
{{- end -}}
{{- $reserve := 201326592.0 -}}
{{- $bound := int64 (divf (subf (divf (float64 $milli) 1000.0) $reserve) 2.0) -}}
{{- if lt $bound 16777216 -}}
{{- fail (printf "nova-postgres: etcd.persistence.size=%v is too small for etcd: it needs 192Mi of WAL plus twice the quota (at least 16Mi), so 224Mi or more" $e.persistence.size) -}}
{{- end -}}
{{- $quota := int64 $e.quotaBackendBytes -}}
{{- if eq $quota 0 -}}
{{- min $bound 8589934592 -}}
{{- else if gt $quota $bound -}}
{{- fail (printf "nova-postgres: etcd.quotaBackendBytes=%d does not fit etcd.persistence.size=%v: at most %d bytes fit (the db, a snapshot copy of it and 192Mi of WAL); lower etcd.quotaBackendBytes, raise etcd.persistence.size, or set etcd.quotaBackendBytes to 0 to compute it" $quota $e.persistence.size $bound) -}}
{{- else -}}
{{- $quota -}}
{{- end -}}
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
{{- if .Values.pooler.enabled }}
{{- range $role := include "nova-postgres.pooler.roles" . | fromJsonArray }}
- {service: {{ include "nova-postgres.name.suffixed" (dict "ctx" $ "suffix" (printf "pooler-%s-metrics" $role)) }}, monitor: {{ include "nova-postgres.pooler.name" (dict "ctx" $ "role" $role) }}, component: {{ printf "pooler-%s-metrics" $role }}, selects: {{ printf "pooler-%s" $role }}, port: {{ $.Values.metrics.pooler.port }}, targetPort: metrics}
{{- end }}
{{- end }}
{{- if .Values.etcd.enabled }}
- {service: {{ include "nova-postgres.name.suffixed" (dict "ctx" . "suffix" "etcd-metrics") }}, monitor: {{ include "nova-postgres.name.suffixed" (dict "ctx" . "suffix" "etcd") }}, component: etcd-metrics, selects: etcd, port: {{ .Values.etcd.metricsPort }}, targetPort: metrics}
{{- end }}
{{- end -}}
