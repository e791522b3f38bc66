{{/*
Addresses of the dependencies: one helper per value, from the subchart's contract (fullnameOverride, else
<release>-redis / <release>-postgres) or, with the subchart off, from externalRedis.* / externalDatabase.*.
*/}}

{{/* Full name of the nova-redis subchart (contract: fullnameOverride, else <release>-redis). Usage: {{ include "nova.redis.fullname" $ }} */}}
{{- define "nova.redis.fullname" -}}
{{- include "nova-common.trunc" (default (printf "%s-redis" .Release.Name) .Values.redis.fullnameOverride) -}}
{{- end -}}

{{/* Namespace of Redis. Usage: {{ include "nova.redis.namespace" $ }} */}}
{{- define "nova.redis.namespace" -}}
{{- default .Release.Namespace .Values.redis.namespaceOverride -}}
{{- end -}}

{{/* Sentinel master set name. Usage: {{ include "nova.redis.masterSet" $ }} */}}
{{- define "nova.redis.masterSet" -}}
{{- if .Values.redis.enabled -}}
{{- dig "sentinel" "masterSet" "nova" .Values.redis -}}
{{- else -}}
{{- default "nova" .Values.externalRedis.masterSet -}}
{{- end -}}
{{- end -}}

{{/* Sentinel addresses, comma separated host:port. Usage: {{ include "nova.redis.sentinelHosts" $ }} */}}
{{- define "nova.redis.sentinelHosts" -}}
{{- if .Values.redis.enabled -}}
{{- printf "%s:%d" (include "nova.svcHost" (dict "ctx" . "name" (printf "%s-sentinel" (include "nova.redis.fullname" .)) "namespace" (include "nova.redis.namespace" .))) (int (dig "sentinel" "port" 26379 .Values.redis)) -}}
{{- else -}}
{{- join "," .Values.externalRedis.sentinelAddrs -}}
{{- end -}}
{{- end -}}

{{/* Write-safe Redis endpoint host (reaches only the master). Usage: {{ include "nova.redis.masterHost" $ }} */}}
{{- define "nova.redis.masterHost" -}}
{{- if .Values.redis.enabled -}}
{{- include "nova.svcHost" (dict "ctx" . "name" (printf "%s-master" (include "nova.redis.fullname" .)) "namespace" (include "nova.redis.namespace" .)) -}}
{{- else if .Values.externalRedis.host -}}
{{- .Values.externalRedis.host -}}
{{- else -}}
{{- fail "redis.enabled=false: set externalRedis.host (and externalRedis.sentinelAddrs) to the Redis the services use" -}}
{{- end -}}
{{- end -}}

{{/* Redis port of the write-safe endpoint. Usage: {{ include "nova.redis.port" $ }} */}}
{{- define "nova.redis.port" -}}
{{- if .Values.redis.enabled -}}
{{- int (dig "redis" "port" 6379 .Values.redis) -}}
{{- else -}}
{{- int (default 6379 .Values.externalRedis.port) -}}
{{- end -}}
{{- end -}}

{{/* Whether Redis requires a password. Usage: {{ if eq (include "nova.redis.authEnabled" $) "true" }} */}}
{{- define "nova.redis.authEnabled" -}}
{{- if .Values.redis.enabled -}}
{{- ne (toString (dig "auth" "enabled" true .Values.redis)) "false" -}}
{{- else -}}
{{- ne (toString .Values.externalRedis.existingSecret) "" -}}
{{- end -}}
{{- end -}}

{{/* Full name of the nova-postgres subchart (contract: fullnameOverride, else <release>-postgres). Usage: {{ include "nova.postgres.fullname" $ }} */}}
{{- define "nova.postgres.fullname" -}}
{{- include "nova-common.trunc" (default (printf "%s-postgres" .Release.Name) .Values.postgres.fullnameOverride) -}}
{{- end -}}

{{/* Namespace of PostgreSQL. Usage: {{ include "nova.postgres.namespace" $ }} */}}
{{- define "nova.postgres.namespace" -}}
{{- default .Release.Namespace .Values.postgres.namespaceOverride -}}
{{- end -}}

{{/* Whether the services connect through the subchart's PgBouncer pooler (postgres.pooler.enabled). Usage: {{ if eq (include "nova.postgres.pooled" $) "true" }} */}}
{{- define "nova.postgres.pooled" -}}
{{- and .Values.postgres.enabled (dig "pooler" "enabled" false .Values.postgres) -}}
{{- end -}}

{{/* Read-write host (the current primary, or the -pooler-rw pooler in front of it). Usage: {{ include "nova.postgres.primaryHost" $ }} */}}
{{- define "nova.postgres.primaryHost" -}}
{{- if eq (include "nova.postgres.pooled" .) "true" -}}
{{- include "nova.svcHost" (dict "ctx" . "name" (printf "%s-pooler-rw" (include "nova.postgres.fullname" .)) "namespace" (include "nova.postgres.namespace" .)) -}}
{{- else if .Values.postgres.enabled -}}
{{- include "nova.svcHost" (dict "ctx" . "name" (printf "%s-primary" (include "nova.postgres.fullname" .)) "namespace" (include "nova.postgres.namespace" .)) -}}
{{- else if .Values.externalDatabase.host -}}
{{- .Values.externalDatabase.host -}}
{{- else -}}
{{- fail "postgres.enabled=false: set externalDatabase.host to the PostgreSQL the services use" -}}
{{- end -}}
{{- end -}}

{{/* Read-only host (the replicas; with the pooler the -pooler-ro pooler, or -pooler-rw when there is none, so one
port serves both). Usage: {{ include "nova.postgres.readHost" $ }} */}}
{{- define "nova.postgres.readHost" -}}
{{- if eq (include "nova.postgres.pooled" .) "true" -}}
{{- $role := ternary "ro" "rw" (dig "pooler" "readOnly" "enabled" false .Values.postgres) -}}
{{- include "nova.svcHost" (dict "ctx" . "name" (printf "%s-pooler-%s" (include "nova.postgres.fullname" .) $role) "namespace" (include "nova.postgres.namespace" .)) -}}
{{- else if .Values.postgres.enabled -}}
{{- include "nova.svcHost" (dict "ctx" . "name" (printf "%s-replicas" (include "nova.postgres.fullname" .)) "namespace" (include "nova.postgres.namespace" .)) -}}
{{- else -}}
{{- default (include "nova.postgres.primaryHost" .) .Values.externalDatabase.readHost -}}
{{- end -}}
{{- end -}}

{{/* PostgreSQL port (the pooler's with the pooler). Usage: {{ include "nova.postgres.port" $ }} */}}
{{- define "nova.postgres.port" -}}
{{- if eq (include "nova.postgres.pooled" .) "true" -}}
{{- int (dig "pooler" "port" 6432 .Values.postgres) -}}
{{- else if .Values.postgres.enabled -}}
{{- int (dig "postgresql" "port" 5432 .Values.postgres) -}}
{{- else -}}
{{- int (default 5432 .Values.externalDatabase.port) -}}
{{- end -}}
{{- end -}}
