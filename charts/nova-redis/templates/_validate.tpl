{{/*
Cross-field validation of the nova-redis values, beyond what values.schema.json enforces (replicas >= 3,
the anti-affinity enum, aclUsers.*.keyPrefix present and free of spaces/globs are schema checks).
Included once, from redis/configmap.yaml. Usage: {{ include "nova-redis.validate" . }}
*/}}
{{- define "nova-redis.validate" -}}
{{- $n := int .Values.replicas -}}
{{- $q := int .Values.sentinel.quorum -}}
{{- if gt $q $n -}}
{{- fail (printf "nova-redis: sentinel.quorum is %d; it must be between 1 and replicas (%d), normally a majority (%d)" $q $n (add (div $n 2) 1)) -}}
{{- end -}}
{{- if and .Values.nodeAddresses (ne (len .Values.nodeAddresses) $n) -}}
{{- fail (printf "nova-redis: nodeAddresses has %d entries but replicas is %d; give one address per pod or leave it empty" (len .Values.nodeAddresses) $n) -}}
{{- end -}}
{{- range $name, $u := .Values.aclUsers -}}
{{- if not (regexMatch "^[a-z0-9][a-z0-9_-]*$" $name) -}}
{{- fail (printf "nova-redis: aclUsers.%s: a user name may only contain lower-case letters, digits, '_' and '-'" $name) -}}
{{- end -}}
{{- if eq $name "default" -}}
{{- fail "nova-redis: aclUsers.default: the default user is the chart's own (requirepass); pick another name" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.aclUsers (not .Values.auth.enabled) -}}
{{- fail "nova-redis: aclUsers needs auth.enabled=true (the users' passwords live in the auth Secret)" -}}
{{- end -}}
{{- if not (regexMatch "^[A-Za-z0-9._-]+$" .Values.sentinel.masterSet) -}}
{{- fail (printf "nova-redis: sentinel.masterSet %q may only contain letters, digits, '.', '_' and '-'" .Values.sentinel.masterSet) -}}
{{- end -}}
{{- end -}}
