{{/*
Names and namespaces of the nova umbrella chart (the 63-character truncation is nova-common's).
*/}}

{{/* Chart name: nameOverride, else nova. Usage: {{ include "nova.name" $ }} */}}
{{- define "nova.name" -}}
{{- include "nova-common.trunc" (default .Chart.Name .Values.nameOverride) -}}
{{- end -}}

{{/* Full name: fullnameOverride, else the release name. Usage: {{ include "nova.fullname" $ }} */}}
{{- define "nova.fullname" -}}
{{- include "nova-common.fullname" (dict "ctx" . "default" .Release.Name) -}}
{{- end -}}

{{/* Name of one object of a component: <fullname>-<component>, the component kept whole.
Usage: {{ include "nova.componentName" (dict "ctx" $ "component" "user-service") }} */}}
{{- define "nova.componentName" -}}
{{- include "nova-common.name.suffixed" (dict "name" (include "nova.fullname" .ctx) "suffix" .component) -}}
{{- end -}}

{{/* Cluster DNS domain (nova.validate checks that the subcharts agree). Usage: {{ include "nova.clusterDomain" $ }} */}}
{{- define "nova.clusterDomain" -}}
{{- default "cluster.local" .Values.clusterDomain -}}
{{- end -}}

{{/* Namespace of the microservices: services.namespace, else the release namespace. Usage: {{ include "nova.servicesNamespace" $ }} */}}
{{- define "nova.servicesNamespace" -}}
{{- default .Release.Namespace .Values.services.namespace -}}
{{- end -}}

{{/* In-cluster DNS name of a Service. Usage: {{ include "nova.svcHost" (dict "ctx" $ "name" "x" "namespace" "ns") }} */}}
{{- define "nova.svcHost" -}}
{{- printf "%s.%s.svc.%s" .name .namespace (include "nova.clusterDomain" .ctx) -}}
{{- end -}}

{{/* Namespaces this release places objects in other than the release namespace, as a YAML list.
Usage: {{ include "nova.namespaces" $ | fromYamlArray }} */}}
{{- define "nova.namespaces" -}}
{{- $all := list (include "nova.servicesNamespace" .) -}}
{{- if .Values.redis.enabled }}{{ $all = append $all (include "nova.redis.namespace" .) }}{{ end -}}
{{- if .Values.postgres.enabled }}{{ $all = append $all (include "nova.postgres.namespace" .) }}{{ end -}}
{{- toYaml (without (uniq $all) .Release.Namespace | sortAlpha) -}}
{{- end -}}
