{{/*
Full name, truncated to 63 characters (the one place that truncates).
Usage: {{ include "nova-redis.fullname" . }}
*/}}
{{- define "nova-redis.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-redis" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
A name derived from the full name with a suffix, truncated so the whole fits 63 characters.
Usage: {{ include "nova-redis.name.suffixed" (dict "ctx" $ "suffix" "master") }}
*/}}
{{- define "nova-redis.name.suffixed" -}}
{{- $suffix := required "nova-redis.name.suffixed: suffix is required" .suffix -}}
{{- $base := include "nova-redis.fullname" .ctx | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" -}}
{{- printf "%s-%s" $base $suffix -}}
{{- end -}}

{{/* Headless Service name. Usage: {{ include "nova-redis.headless" . }} */}}
{{- define "nova-redis.headless" -}}
{{- include "nova-redis.name.suffixed" (dict "ctx" . "suffix" "headless") -}}
{{- end -}}

{{/* Sentinel Service name. Usage: {{ include "nova-redis.sentinel.fullname" . }} */}}
{{- define "nova-redis.sentinel.fullname" -}}
{{- include "nova-redis.name.suffixed" (dict "ctx" . "suffix" "sentinel") -}}
{{- end -}}

{{/* Write-safe endpoint (Service and HAProxy Deployment) name. Usage: {{ include "nova-redis.master.fullname" . }} */}}
{{- define "nova-redis.master.fullname" -}}
{{- include "nova-redis.name.suffixed" (dict "ctx" . "suffix" "master") -}}
{{- end -}}

{{/* Namespace of every object. Usage: {{ include "nova-redis.namespace" . }} */}}
{{- define "nova-redis.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{/*
Chart label value, always nova-redis-<version>: not .Chart.Name, which Helm replaces with the alias
(`redis`) under the umbrella. Usage: {{ include "nova-redis.chart" . }}
*/}}
{{- define "nova-redis.chart" -}}
{{- printf "nova-redis-%s" .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels (name, instance, component only).
Usage: {{ include "nova-redis.selectorLabels" (dict "ctx" $ "component" "redis") }}
*/}}
{{- define "nova-redis.selectorLabels" -}}
app.kubernetes.io/name: nova-redis
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ required "nova-redis.selectorLabels: component is required" .component }}
{{- end -}}

{{/*
Standard labels.
Usage: {{ include "nova-redis.labels" (dict "ctx" $ "component" "redis") }}
*/}}
{{- define "nova-redis.labels" -}}
{{ include "nova-redis.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: nova
helm.sh/chart: {{ include "nova-redis.chart" .ctx }}
{{- with .ctx.Values.global.labels }}
{{ toYaml . }}
{{- end }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Image reference from an image block: registry (global.imageRegistry wins), repository, tag or digest.
Usage: {{ include "nova-redis.image" (dict "ctx" $ "image" .Values.image "key" "image") }}
*/}}
{{- define "nova-redis.image" -}}
{{- $img := .image -}}
{{- if not $img.repository -}}
{{- fail (printf "nova-redis: %s.repository is empty; set it to an image repository such as library/redis" .key) -}}
{{- end -}}
{{- $registry := default $img.registry .ctx.Values.global.imageRegistry -}}
{{- $name := ternary (printf "%s/%s" $registry $img.repository) $img.repository (ne $registry "") -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $name $img.digest -}}
{{- else if $img.tag -}}
{{- printf "%s:%s" $name $img.tag -}}
{{- else -}}
{{- fail (printf "nova-redis: %s.tag and %s.digest are both empty; pin one of them" .key .key) -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets (global first, then the chart's). Usage: {{ include "nova-redis.imagePullSecrets" . }} */}}
{{- define "nova-redis.imagePullSecrets" -}}
{{- $secrets := concat (.Values.global.imagePullSecrets | default list) (.Values.imagePullSecrets | default list) | uniq -}}
{{- if $secrets }}
imagePullSecrets:
{{- range $secrets }}
  - name: {{ if kindIs "map" . }}{{ .name }}{{ else }}{{ . }}{{ end }}
{{- end }}
{{- end -}}
{{- end -}}

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
{{- tpl .Values.auth.existingSecret . -}}
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
Comma list of Sentinel addresses (host:port) for clients, and the quorum; validates the topology values.
Usage: {{ include "nova-redis.validate" . }}
*/}}
{{- define "nova-redis.validate" -}}
{{- $n := int .Values.replicas -}}
{{- if lt $n 3 -}}
{{- fail (printf "nova-redis: replicas is %d; Sentinel failover needs at least 3 pods (one master, two replicas)" $n) -}}
{{- end -}}
{{- $q := int .Values.sentinel.quorum -}}
{{- if or (lt $q 1) (gt $q $n) -}}
{{- fail (printf "nova-redis: sentinel.quorum is %d; it must be between 1 and replicas (%d), normally a majority (%d)" $q $n (add (div $n 2) 1)) -}}
{{- end -}}
{{- if and .Values.nodeAddresses (ne (len .Values.nodeAddresses) $n) -}}
{{- fail (printf "nova-redis: nodeAddresses has %d entries but replicas is %d; give one address per pod or leave it empty" (len .Values.nodeAddresses) $n) -}}
{{- end -}}
{{- if not (has .Values.affinity.podAntiAffinity (list "soft" "hard" "none")) -}}
{{- fail (printf "nova-redis: affinity.podAntiAffinity is %q; use soft, hard or none" .Values.affinity.podAntiAffinity) -}}
{{- end -}}
{{- range $name, $u := .Values.aclUsers -}}
{{- if not (regexMatch "^[a-z0-9][a-z0-9_-]*$" $name) -}}
{{- fail (printf "nova-redis: aclUsers.%s: a user name may only contain lower-case letters, digits, '_' and '-'" $name) -}}
{{- end -}}
{{- if eq $name "default" -}}
{{- fail "nova-redis: aclUsers.default: the default user is the chart's own (requirepass); pick another name" -}}
{{- end -}}
{{- if not (and (kindIs "map" $u) $u.keyPrefix) -}}
{{- fail (printf "nova-redis: aclUsers.%s.keyPrefix is required (the user's own key prefix, e.g. \"%s:\")" $name $name) -}}
{{- end -}}
{{- if regexMatch "[\\s*?]" $u.keyPrefix -}}
{{- fail (printf "nova-redis: aclUsers.%s.keyPrefix %q may not contain spaces, '*' or '?'" $name $u.keyPrefix) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.aclUsers (not .Values.auth.enabled) -}}
{{- fail "nova-redis: aclUsers needs auth.enabled=true (the users' passwords live in the auth Secret)" -}}
{{- end -}}
{{- if not (regexMatch "^[A-Za-z0-9._-]+$" .Values.sentinel.masterSet) -}}
{{- fail (printf "nova-redis: sentinel.masterSet %q may only contain letters, digits, '.', '_' and '-'" .Values.sentinel.masterSet) -}}
{{- end -}}
{{- end -}}

{{/*
Pod anti-affinity + topology spread for a component, from .Values.affinity.
Usage: {{ include "nova-redis.scheduling" (dict "ctx" $ "component" "redis") }}
*/}}
{{- define "nova-redis.scheduling" -}}
{{- $ctx := .ctx -}}
{{- $aff := $ctx.Values.affinity -}}
{{- $selector := include "nova-redis.selectorLabels" . | fromYaml -}}
{{- if $aff.custom }}
affinity:
  {{- toYaml $aff.custom | nindent 2 }}
{{- else if eq $aff.podAntiAffinity "hard" }}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: {{ $aff.topologyKey }}
        labelSelector:
          matchLabels:
            {{- toYaml $selector | nindent 12 }}
{{- else if eq $aff.podAntiAffinity "soft" }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: {{ $aff.topologyKey }}
          labelSelector:
            matchLabels:
              {{- toYaml $selector | nindent 14 }}
{{- end }}
{{- if $ctx.Values.topologySpread.enabled }}
topologySpreadConstraints:
  - maxSkew: {{ $ctx.Values.topologySpread.maxSkew }}
    topologyKey: {{ $ctx.Values.topologySpread.topologyKey }}
    whenUnsatisfiable: {{ $ctx.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- toYaml $selector | nindent 8 }}
{{- end }}
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
- name: PRESTOP_TIMEOUT
  value: {{ sub (int .Values.terminationGracePeriodSeconds) 5 | quote }}
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
