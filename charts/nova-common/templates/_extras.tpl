{{/*
Escape hatches: what a user adds to a chart's pods and objects (extraEnv, extraEnvFrom, extraVolumes,
extraVolumeMounts, sidecars, extraInitContainers, podLabels, extraObjects). User lists are rendered with tpl
against the release, so they may use {{ .Release.Name }} and the chart's helpers; an empty hatch renders
nothing, so a chart renders exactly as without it.
*/}}

{{/* A value rendered with tpl against the release: a string is a template itself, anything else is its YAML,
templated. Text without "{{" is returned as it is, which is what tpl would give, without the cost of tpl (it
clones the whole template set on every call). Usage: {{ include "nova-common.tplValue" (dict "ctx" $ "value" .Values.sidecars) }} */}}
{{- define "nova-common.tplValue" -}}
{{- $text := .value -}}
{{- if not (kindIs "string" $text) }}{{ $text = toYaml $text }}{{ end -}}
{{- if contains "{{" $text -}}
{{- tpl $text .ctx -}}
{{- else -}}
{{- $text -}}
{{- end -}}
{{- end -}}

{{/* The items of a user list, templated, as YAML list items to append to one of the chart's own lists (env,
volumeMounts, volumes, containers, initContainers); nothing when the list is empty. .reserved names the entries
the chart already has (give it for containers and volumes, whose names must be unique in a pod): an item
named like one of them or like an earlier item fails, naming .key.
Usage: {{- with include "nova-common.extras.items" (dict "ctx" $ "items" .Values.redis.sidecars "key" "redis.sidecars" "reserved" (list "redis" "sentinel")) }}{{ . | nindent 8 }}{{ end }} */}}
{{- define "nova-common.extras.items" -}}
{{- if .items -}}
{{- if hasKey . "reserved" }}{{ include "nova-common.extras.checkNames" . }}{{ end -}}
{{- include "nova-common.tplValue" (dict "ctx" .ctx "value" .items) -}}
{{- end -}}
{{- end -}}

{{/* A field made only of a user list (envFrom of a chart container, initContainers of a pod that has none):
`<name>:` and the templated items; nothing when the list is empty.
Usage: {{- with include "nova-common.extras.field" (dict "ctx" $ "name" "envFrom" "items" .Values.redis.extraEnvFrom "key" "redis.extraEnvFrom") }}{{ . | nindent 10 }}{{ end }} */}}
{{- define "nova-common.extras.field" -}}
{{- if .items -}}
{{- if hasKey . "reserved" }}{{ include "nova-common.extras.checkNames" . }}{{ end -}}
{{ .name }}:
{{ include "nova-common.tplValue" (dict "ctx" .ctx "value" .items) }}
{{- end -}}
{{- end -}}

{{/* Fails when an item of .items (a list of maps) is named like one of .reserved, like an item of .reservedItems
(e.g. the extra init containers, for sidecars) or like an earlier item: the API server would refuse the pod (two
containers or volumes of one name). Renders nothing.
Usage: {{- include "nova-common.extras.checkNames" (dict "items" .Values.extraVolumes "key" "extraVolumes" "reserved" (list "tmp")) -}} */}}
{{- define "nova-common.extras.checkNames" -}}
{{- $seen := concat (list) (default (list) .reserved) -}}
{{- range (default (list) .reservedItems) -}}
{{- if and (kindIs "map" .) (hasKey . "name") }}{{ $seen = append $seen (toString .name) }}{{ end -}}
{{- end -}}
{{- range $i, $item := .items -}}
{{- if and (kindIs "map" $item) (hasKey $item "name") -}}
{{- if has (toString $item.name) $seen -}}
{{- fail (printf "%s[%d].name=%s: the pod already has one of that name (%s); choose another name" $.key $i (toString $item.name) (join ", " $seen)) -}}
{{- end -}}
{{- $seen = append $seen (toString $item.name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels of a pod template: .labels (the chart's labels, YAML) plus .podLabels. A pod label may add a label
or change a non-selector one, never a selector label (.selector, YAML): the pods would leave their
controller's selector and their Services. Selectors themselves never see podLabels.
Usage: {{- include "nova-common.podLabels" (dict "labels" (include "nova-redis.labels" $args) "selector" (include "nova-redis.selectorLabels" $args) "podLabels" .Values.redis.podLabels "key" "redis.podLabels") | nindent 8 }} */}}
{{- define "nova-common.podLabels" -}}
{{- if not .podLabels -}}
{{- .labels -}}
{{- else -}}
{{- $labels := fromYaml .labels -}}
{{- $selector := fromYaml .selector -}}
{{- range $name, $value := .podLabels -}}
{{- if hasKey $selector $name -}}
{{- fail (printf "%s: %s is a selector label of the chart (pods would leave their controller and Services); pick another label name" $.key $name) -}}
{{- end -}}
{{- $_ := set $labels $name (toString $value) -}}
{{- end -}}
{{- toYaml $labels -}}
{{- end -}}
{{- end -}}

{{/* extraObjects: each entry (a map, or a string holding one YAML object) rendered with tpl against the release,
one document each; an entry that renders to nothing is skipped, one without apiVersion or kind fails naming
.key and its index.
Usage: {{- include "nova-common.extraObjects" (dict "ctx" $ "objects" .Values.extraObjects "key" "extraObjects") }}
(in a chart's templates/extra-objects.yaml) */}}
{{- define "nova-common.extraObjects" -}}
{{- range $i, $object := .objects }}
{{- $text := include "nova-common.tplValue" (dict "ctx" $.ctx "value" $object) | trim }}
{{- if $text }}
{{- $parsed := fromYaml $text }}
{{- if or (hasKey $parsed "Error") (not $parsed.apiVersion) (not $parsed.kind) }}
{{- fail (printf "%s[%d]: renders no Kubernetes object (one YAML mapping with apiVersion and kind)%s" $.key $i (ternary (printf ": %v" $parsed.Error) "" (hasKey $parsed "Error"))) }}
{{- end }}
---
{{ $text }}
{{- end }}
{{- end }}
{{- end -}}
