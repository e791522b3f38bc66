{{/* Image reference (see nova-common.image): global.imageRegistry wins, a digest wins over the tag, and an empty
tag with no digest fails naming the key. Usage: {{ include "nova-postgres.image" (dict "ctx" $ "image" .Values.image "key" "image") }} */}}
{{- define "nova-postgres.image" -}}
{{- include "nova-common.image" (dict "ctx" .ctx "image" .image "key" .key) -}}
{{- end -}}

{{/* imagePullSecrets from global and the chart. Usage: {{ include "nova-postgres.imagePullSecrets" . }} */}}
{{- define "nova-postgres.imagePullSecrets" -}}
{{- include "nova-common.imagePullSecrets" . -}}
{{- end -}}
