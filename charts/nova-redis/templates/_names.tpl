{{/*
Names of the nova-redis chart: thin wrappers over nova-common (the one 63-character truncation lives there).
*/}}

{{/* Full name: fullnameOverride, else <release>-redis. Usage: {{ include "nova-redis.fullname" . }} */}}
{{- define "nova-redis.fullname" -}}
{{- include "nova-common.fullname" (dict "ctx" . "default" (printf "%s-redis" .Release.Name)) -}}
{{- end -}}

{{/* A name derived from the full name with a suffix; the suffix always survives the 63-character cut.
Usage: {{ include "nova-redis.name.suffixed" (dict "ctx" $ "suffix" "master") }} */}}
{{- define "nova-redis.name.suffixed" -}}
{{- include "nova-common.name.suffixed" (dict "name" (include "nova-redis.fullname" .ctx) "suffix" .suffix) -}}
{{- end -}}

{{/* Headless Service name. Usage: {{ include "nova-redis.headless" . }} */}}
{{- define "nova-redis.headless" -}}
{{- include "nova-redis.name.suffixed" (dict "ctx" . "suffix" "headless") -}}
{{- end -}}

{{/* Sentinel Service name. Usage: {{ include "nova-redis.sentinel.fullname" . }} */}}
{{- define "nova-redis.sentinel.fullname" -}}
{{- include "nova-redis.name.suffixed" (dict "ctx" . "suffix" "sentinel") -}}
{{- end -}}

{{/* Write-safe endpoint (Service and HAProxy Deployment) name. Usage: {{ include "nova-redis.master.fullname" . }} */}}
{{- define "nova-redis.master.fullname" -}}
{{- include "nova-redis.name.suffixed" (dict "ctx" . "suffix" "master") -}}
{{- end -}}

{{/* Namespace of every object. Usage: {{ include "nova-redis.namespace" . }} */}}
{{- define "nova-redis.namespace" -}}
{{- include "nova-common.namespace" . -}}
{{- end -}}
