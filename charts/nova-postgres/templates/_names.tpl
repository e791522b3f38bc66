{{/*
Names of the nova-postgres chart: thin wrappers over nova-common (the one 63-character truncation lives there).
*/}}

{{/* Chart name for labels: always nova-postgres. Not .Chart.Name, which Helm replaces with the alias
(`postgres`) when the umbrella depends on this chart, and the umbrella's NetworkPolicies select
app.kubernetes.io/name=nova-postgres. Usage: {{ include "nova-postgres.name" . }} */}}
{{- define "nova-postgres.name" -}}
nova-postgres
{{- end -}}

{{/* Full name: fullnameOverride, else <release>-postgres. Usage: {{ include "nova-postgres.fullname" . }} */}}
{{- define "nova-postgres.fullname" -}}
{{- include "nova-common.fullname" (dict "ctx" . "default" (printf "%s-postgres" .Release.Name)) -}}
{{- end -}}

{{/* <fullname>-<suffix>, the suffix kept whole within 63 characters.
Usage: {{ include "nova-postgres.name.suffixed" (dict "ctx" $ "suffix" "primary") }} */}}
{{- define "nova-postgres.name.suffixed" -}}
{{- include "nova-common.name.suffixed" (dict "name" (include "nova-postgres.fullname" .ctx) "suffix" .suffix) -}}
{{- end -}}

{{/* etcd name: <fullname>-etcd. Usage: {{ include "nova-postgres.etcd.fullname" . }} */}}
{{- define "nova-postgres.etcd.fullname" -}}
{{- include "nova-postgres.name.suffixed" (dict "ctx" . "suffix" "etcd") -}}
{{- end -}}

{{/* etcd peer (headless) Service name. Usage: {{ include "nova-postgres.etcd.peerService" . }} */}}
{{- define "nova-postgres.etcd.peerService" -}}
{{- include "nova-common.name.suffixed" (dict "name" (include "nova-postgres.etcd.fullname" .) "suffix" "headless") -}}
{{- end -}}

{{/* Namespace: namespaceOverride, else the release namespace. Usage: {{ include "nova-postgres.namespace" . }} */}}
{{- define "nova-postgres.namespace" -}}
{{- include "nova-common.namespace" . -}}
{{- end -}}
