{{/* storageClassName of a volume claim: the persistence block's storageClass, else global.storageClass;
"-" means "" (no dynamic provisioning) everywhere; nothing when both are empty (the cluster default).
Usage: {{- include "nova-common.storageClass" (dict "ctx" $ "persistence" .Values.persistence) | nindent 8 }} */}}
{{- define "nova-common.storageClass" -}}
{{- $sc := toString (.persistence.storageClass | default ((.ctx.Values.global).storageClass) | default "") -}}
{{- if $sc -}}
storageClassName: {{ ternary "" $sc (eq $sc "-") | quote }}
{{- end -}}
{{- end -}}
