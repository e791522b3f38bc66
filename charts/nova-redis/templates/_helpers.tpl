{{/* ServiceAccount name. Usage: {{ include "nova-redis.serviceAccountName" . }} */}}
{{- define "nova-redis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "nova-redis.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret holding `redis-password`. Usage: {{ include "nova-redis.secretName" . }} */}}
{{- define "nova-redis.secretName" -}}
{{- if .Values.auth.existingSecret -}}
{{- include "nova-common.tplValue" (dict "value" .Values.auth.existingSecret "ctx" .) -}}
{{- else -}}
{{- include "nova-redis.fullname" . -}}
{{- end -}}
{{- end -}}

{{/*
The address of Redis pod N as every pod and Sentinel sees it: `nodeAddresses[N]` when set (runtime tests,
networks without cluster DNS), else the pod's stable DNS name under the headless Service.
Usage: {{ include "nova-redis.nodeHost" (dict "ctx" $ "index" 0) }}
*/}}
{{- define "nova-redis.nodeHost" -}}
{{- $ctx := .ctx -}}
{{- if $ctx.Values.nodeAddresses -}}
{{- index $ctx.Values.nodeAddresses (int .index) -}}
{{- else -}}
{{- printf "%s-%d.%s.%s.svc.%s" (include "nova-redis.fullname" $ctx) (int .index) (include "nova-redis.headless" $ctx) (include "nova-redis.namespace" $ctx) $ctx.Values.clusterDomain -}}
{{- end -}}
{{- end -}}

{{/* Space-separated list of every node's address, pod 0 first. Usage: {{ include "nova-redis.nodeHosts" . }} */}}
{{- define "nova-redis.nodeHosts" -}}
{{- $hosts := list -}}
{{- range $i := until (int .Values.replicas) -}}
{{- $hosts = append $hosts (include "nova-redis.nodeHost" (dict "ctx" $ "index" $i)) -}}
{{- end -}}
{{- join " " $hosts -}}
{{- end -}}

{{/*
Environment of the redis and sentinel containers (the start, preStop and probe scripts read only these).
Usage: {{ include "nova-redis.podEnv" . | nindent 12 }}
*/}}
{{- define "nova-redis.podEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: NOVA_REDIS_NODES
  value: {{ include "nova-redis.nodeHosts" . | quote }}
- name: NOVA_REDIS_BIND_OWN
  value: {{ ternary "true" "false" (not (empty .Values.nodeAddresses)) | quote }}
- name: NOVA_REDIS_CONFIG_DIR
  value: /opt/nova-redis
- name: NOVA_REDIS_DATA_DIR
  value: /data
- name: NOVA_REDIS_RUN_DIR
  value: /run/nova-redis
- name: REDIS_PORT
  value: {{ .Values.redis.port | quote }}
- name: SENTINEL_PORT
  value: {{ .Values.sentinel.port | quote }}
- name: SENTINEL_MASTER_SET
  value: {{ .Values.sentinel.masterSet | quote }}
- name: SENTINEL_QUORUM
  value: {{ .Values.sentinel.quorum | quote }}
- name: DISCOVERY_TIMEOUT
  value: {{ .Values.sentinel.discoveryTimeoutSeconds | quote }}
- name: FAILOVER_WAIT_SECONDS
  value: {{ mul 2 (div (int .Values.sentinel.failoverTimeout) 1000) | max 10 | quote }}
- name: PRESTOP_TIMEOUT
  value: {{ sub (int .Values.terminationGracePeriodSeconds) 5 | quote }}
{{- if include "nova-common.tls.enabled" . }}
- name: NOVA_REDIS_TLS_DIR
  value: {{ include "nova-redis.tls.dir" . }}
{{- end }}
{{- if .Values.auth.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "nova-redis.secretName" . }}
      key: redis-password
# redis-cli (probes, scripts) reads the password from here, never from argv.
- name: REDISCLI_AUTH
  valueFrom:
    secretKeyRef:
      name: {{ include "nova-redis.secretName" . }}
      key: redis-password
{{ include "nova-redis.sentinelPasswordEnv" . }}
{{- end }}
{{- end -}}

{{/*
SENTINEL_PASSWORD from key `sentinel-password` (Sentinel's requirepass and sentinel-pass). Optional with
an existingSecret: when the key is missing the scripts fall back to REDIS_PASSWORD.
Usage: {{ include "nova-redis.sentinelPasswordEnv" . }}
*/}}
{{- define "nova-redis.sentinelPasswordEnv" -}}
- name: SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "nova-redis.secretName" . }}
      key: sentinel-password
      {{- if .Values.auth.existingSecret }}
      optional: true
      {{- end }}
{{- end -}}

{{/*
Volume mounts of the redis and sentinel containers.
Usage: {{ include "nova-redis.podMounts" . | nindent 12 }}
*/}}
{{- define "nova-redis.podMounts" -}}
- name: config
  mountPath: /opt/nova-redis
  readOnly: true
- name: data
  mountPath: /data
- name: run
  mountPath: /run/nova-redis
- name: tmp
  mountPath: /tmp
{{- if include "nova-common.tls.enabled" . }}
- name: tls
  mountPath: {{ include "nova-redis.tls.dir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{/*
ACL users of the redis container: ACL_USER_<i>_NAME, _RULES and _PASSWORD (from the auth Secret).
Usage: {{ include "nova-redis.aclEnv" . | nindent 12 }}
*/}}
{{- define "nova-redis.aclEnv" -}}
{{- $i := 0 -}}
{{- range $name, $u := .Values.aclUsers }}
- name: ACL_USER_{{ $i }}_NAME
  value: {{ $name | quote }}
- name: ACL_USER_{{ $i }}_RULES
  value: {{ printf "~%s* &%s* %s" $u.keyPrefix $u.keyPrefix (default "+@all -@admin -@dangerous" $u.commands) | quote }}
- name: ACL_USER_{{ $i }}_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "nova-redis.secretName" $ }}
      key: {{ printf "acl-%s-password" $name }}
{{- $i = add1 $i -}}
{{- end }}
{{- end -}}

{{/*
The metrics scrape targets: a YAML list of {service, monitor, component, selects, port, targetPort}; the
Service name is the Prometheus job label of the target (files/alerts.yaml selects on it).
Usage: {{ range include "nova-redis.metrics.targets" . | fromYamlArray }}
*/}}
{{- define "nova-redis.metrics.targets" -}}
{{- $fullname := include "nova-redis.fullname" . -}}
- {service: {{ include "nova-redis.name.suffixed" (dict "ctx" . "suffix" "metrics") }}, monitor: {{ $fullname }}, component: metrics, selects: redis, port: 9121, targetPort: metrics}
- {service: {{ include "nova-redis.name.suffixed" (dict "ctx" . "suffix" "sentinel-metrics") }}, monitor: {{ include "nova-redis.name.suffixed" (dict "ctx" . "suffix" "sentinel") }}, component: sentinel-metrics, selects: redis, port: {{ .Values.metrics.sentinelPort }}, targetPort: sentinel-metrics}
{{- if .Values.masterProxy.enabled }}
- {service: {{ include "nova-redis.name.suffixed" (dict "ctx" . "suffix" "master-metrics") }}, monitor: {{ include "nova-redis.master.fullname" . }}, component: master-metrics, selects: master-proxy, port: {{ .Values.masterProxy.metricsPort }}, targetPort: metrics}
{{- end }}
{{- end -}}
