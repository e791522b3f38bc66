{{/*
TLS from the services to Redis and PostgreSQL (docs/tls.md). global.tls.enabled is the one switch that turns TLS
on in both subcharts (each reads its own tls.enabled or global.tls.enabled); the umbrella then hands every service
the CA and the client settings: DATABASE_SSLMODE, DATABASE_SSLROOTCERT (and both in DATABASE_URL), REDIS_TLS,
REDIS_CA_FILE (and rediss:// in REDIS_URL).
*/}}

{{/* "true" when the services reach PostgreSQL over TLS: the subchart is on and its tls.enabled or global.tls.enabled.
Usage: {{ if include "nova.postgres.tls" $ }} */}}
{{- define "nova.postgres.tls" -}}
{{- if and .Values.postgres.enabled (or (dig "tls" "enabled" false .Values.postgres) (dig "tls" "enabled" false .Values.global)) -}}true{{- end -}}
{{- end -}}

{{/* "true" when the services reach Redis (HAProxy and Sentinel) over TLS. Usage: {{ if include "nova.redis.tls" $ }} */}}
{{- define "nova.redis.tls" -}}
{{- if and .Values.redis.enabled (or (dig "tls" "enabled" false .Values.redis) (dig "tls" "enabled" false .Values.global)) -}}true{{- end -}}
{{- end -}}

{{/* "true" when a service with this spec needs the CA (it uses a dependency that speaks TLS).
Usage: {{ if include "nova.tls.serviceNeedsCA" (dict "ctx" $ "svc" $svc) }} */}}
{{- define "nova.tls.serviceNeedsCA" -}}
{{- if or (and .svc.database.enabled (include "nova.postgres.tls" .ctx)) (and .svc.redis.enabled (include "nova.redis.tls" .ctx)) -}}true{{- end -}}
{{- end -}}

{{/* Where the services find the CA: one file for both dependencies. Usage: {{ include "nova.tls.caFile" $ }} */}}
{{- define "nova.tls.caFile" -}}
/etc/nova/ca/ca.crt
{{- end -}}

{{/* Secret (services namespace) whose ca.crt the services mount: tls.caSecret, else the Secret of the umbrella's own
Certificate (cert-manager writes the issuing CA into ca.crt). Usage: {{ include "nova.tls.caSecretName" $ }} */}}
{{- define "nova.tls.caSecretName" -}}
{{- if .Values.tls.caSecret -}}
{{- include "nova-common.tplValue" (dict "value" .Values.tls.caSecret "ctx" .) -}}
{{- else -}}
{{- include "nova-common.tls.secretName" (dict "ctx" . "fullname" (include "nova.componentName" (dict "ctx" . "component" "services"))) -}}
{{- end -}}
{{- end -}}

{{/* Query string of DATABASE_URL with TLS (libpq URI parameters), else "". Usage: {{ include "nova.postgres.urlParams" $ }} */}}
{{- define "nova.postgres.urlParams" -}}
{{- if include "nova.postgres.tls" . -}}
{{- printf "?sslmode=%s&sslrootcert=%s" .Values.tls.databaseSslMode (include "nova.tls.caFile" .) -}}
{{- end -}}
{{- end -}}

{{/* Scheme of REDIS_URL: rediss with TLS. Usage: {{ include "nova.redis.scheme" $ }} */}}
{{- define "nova.redis.scheme" -}}
{{- ternary "rediss" "redis" (eq (include "nova.redis.tls" .) "true") -}}
{{- end -}}

{{/* Env entries of a service container for TLS to its dependencies (nothing when none speaks TLS).
Usage: {{ include "nova.tls.serviceEnv" (dict "ctx" $ "svc" $svc) | nindent 12 }} */}}
{{- define "nova.tls.serviceEnv" -}}
{{- if and .svc.database.enabled (include "nova.postgres.tls" .ctx) }}
- name: DATABASE_SSLMODE
  value: {{ .ctx.Values.tls.databaseSslMode | quote }}
- name: DATABASE_SSLROOTCERT
  value: {{ include "nova.tls.caFile" .ctx }}
{{- end }}
{{- if and .svc.redis.enabled (include "nova.redis.tls" .ctx) }}
- name: REDIS_TLS
  value: "true"
- name: REDIS_CA_FILE
  value: {{ include "nova.tls.caFile" .ctx }}
{{- end }}
{{- end -}}

{{/* Volume mount of the CA. Usage: {{ include "nova.tls.caMount" . | nindent 12 }} */}}
{{- define "nova.tls.caMount" -}}
- name: dependency-ca
  mountPath: {{ dir (include "nova.tls.caFile" .) }}
  readOnly: true
{{- end -}}

{{/* Volume of the CA: only the ca.crt key of the Secret (never a private key). Usage: {{ include "nova.tls.caVolume" . | nindent 8 }} */}}
{{- define "nova.tls.caVolume" -}}
- name: dependency-ca
  secret:
    secretName: {{ include "nova.tls.caSecretName" . }}
    defaultMode: 0444
    items:
      - key: ca.crt
        path: ca.crt
{{- end -}}
