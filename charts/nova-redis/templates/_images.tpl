{{/* Image reference from an image block (see nova-common.image): the tag or digest must be pinned.
Usage: {{ include "nova-redis.image" (dict "ctx" $ "image" .Values.image "key" "image") }} */}}
{{- define "nova-redis.image" -}}
{{- include "nova-common.image" (dict "ctx" .ctx "image" .image "key" .key) -}}
{{- end -}}

{{/* imagePullSecrets (global first, then the chart's). Usage: {{ include "nova-redis.imagePullSecrets" . }} */}}
{{- define "nova-redis.imagePullSecrets" -}}
{{- include "nova-common.imagePullSecrets" . -}}
{{- end -}}
