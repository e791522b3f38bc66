{{/* A securityContext (pod or container): .base deep-merged with .override (either may be empty), as YAML.
Usage: securityContext: {{- include "nova-common.securityContext" (dict "base" .Values.securityContext "override" $svc.containerSecurityContext) | nindent 12 }} */}}
{{- define "nova-common.securityContext" -}}
{{- $sc := deepCopy (default dict .base) -}}
{{- include "nova-common.deepMerge" (dict "dst" $sc "src" (default dict .override)) -}}
{{- toYaml $sc -}}
{{- end -}}
