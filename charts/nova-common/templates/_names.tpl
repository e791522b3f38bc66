{{/*
Names: the one 63-character truncation rule and every name built on it.
*/}}

{{/* Truncate a name to 63 characters, no trailing dash (the one place this rule lives).
Usage: {{ include "nova-common.trunc" "some-name" }} */}}
{{- define "nova-common.trunc" -}}
{{- . | toString | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of a chart's objects: .ctx.Values.fullnameOverride, else .default, truncated.
Usage: {{ include "nova-common.fullname" (dict "ctx" $ "default" (printf "%s-redis" $.Release.Name)) }} */}}
{{- define "nova-common.fullname" -}}
{{- $name := default .default .ctx.Values.fullnameOverride -}}
{{- if not $name -}}
{{- fail "nova-common.fullname: pass (dict \"ctx\" $ \"default\" \"<name>\") or set fullnameOverride" -}}
{{- end -}}
{{- include "nova-common.trunc" $name -}}
{{- end -}}

{{/* A name with a suffix: the base is cut so that "<base>-<suffix>" fits 63 characters and the suffix survives.
Usage: {{ include "nova-common.name.suffixed" (dict "name" $fullname "suffix" "headless") }} */}}
{{- define "nova-common.name.suffixed" -}}
{{- $suffix := toString .suffix -}}
{{- if not $suffix -}}
{{- fail "nova-common.name.suffixed: pass (dict \"name\" <base> \"suffix\" \"<suffix>\")" -}}
{{- end -}}
{{- $base := toString .name | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" -}}
{{- printf "%s-%s" $base $suffix -}}
{{- end -}}

{{/* Namespace of a chart's objects: namespaceOverride, else the release namespace.
Usage: {{ include "nova-common.namespace" $ }} */}}
{{- define "nova-common.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{/* Value of the helm.sh/chart label, <name>-<version>. The name is passed, not .Chart.Name, which Helm
replaces with the alias (`redis`) under an umbrella.
Usage: {{ include "nova-common.chart" (dict "ctx" $ "name" "nova-redis") }} */}}
{{- define "nova-common.chart" -}}
{{- include "nova-common.trunc" (printf "%s-%s" .name .ctx.Chart.Version | replace "+" "_") -}}
{{- end -}}

{{/* Where a chart's values sit in the values the user passes, as a key prefix with a trailing dot: "" when the
chart is installed itself, "postgres." when an umbrella depends on it under the alias `postgres` (Helm places a
dependency's templates at <parent>/charts/<alias>/templates). Validation messages put it before the keys they
name, so they name the key the user sets. Usage: {{ include "nova-common.valuesPrefix" $ }} */}}
{{- define "nova-common.valuesPrefix" -}}
{{- range rest (splitList "/charts/" (trimSuffix "/templates" .Template.BasePath)) }}{{ . }}.{{ end -}}
{{- end -}}
