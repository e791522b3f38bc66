{{/* Truncate a name to 63 characters, no trailing dash. Usage: {{ include "nova-common.trunc" "some-name" }} */}}
{{- define "nova-common.trunc" -}}
{{- . | toString | trunc 63 | trimSuffix "-" -}}
{{- end -}}
