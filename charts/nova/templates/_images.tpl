{{/* Image reference (see nova-common.image); an empty tag is the chart's appVersion.
Usage: {{ include "nova.image" (dict "ctx" $ "image" .image "what" "services.microservices.user-service.image") }} */}}
{{- define "nova.image" -}}
{{- include "nova-common.image" (dict "ctx" .ctx "image" .image "key" .what "defaultTag" .ctx.Chart.AppVersion) -}}
{{- end -}}

{{/* imagePullSecrets of every pod (global.imagePullSecrets). Usage: {{ include "nova.imagePullSecrets" $ }} */}}
{{- define "nova.imagePullSecrets" -}}
{{- include "nova-common.imagePullSecrets" . -}}
{{- end -}}
