{{/*
Chart name for labels: always nova-postgres. Not .Chart.Name, which Helm replaces with the alias
(`postgres`) when the umbrella depends on this chart, and the umbrella's NetworkPolicies select
app.kubernetes.io/name=nova-postgres. Usage: {{ include "nova-postgres.name" . }}
*/}}
{{- define "nova-postgres.name" -}}
nova-postgres
{{- end -}}

{{/* The one truncation rule (63 characters, no trailing dash). Usage: {{ include "nova-postgres.trunc" "some-name" }} */}}
{{- define "nova-postgres.trunc" -}}
{{- . | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: fullnameOverride, else <release>-postgres. Usage: {{ include "nova-postgres.fullname" . }} */}}
{{- define "nova-postgres.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- include "nova-postgres.trunc" .Values.fullnameOverride -}}
{{- else -}}
{{- include "nova-postgres.trunc" (printf "%s-postgres" .Release.Name) -}}
{{- end -}}
{{- end -}}

{{/* etcd name: <fullname>-etcd. Usage: {{ include "nova-postgres.etcd.fullname" . }} */}}
{{- define "nova-postgres.etcd.fullname" -}}
{{- include "nova-postgres.trunc" (printf "%s-etcd" (include "nova-postgres.fullname" .)) -}}
{{- end -}}

{{/* etcd peer (headless) Service name. Usage: {{ include "nova-postgres.etcd.peerService" . }} */}}
{{- define "nova-postgres.etcd.peerService" -}}
{{- include "nova-postgres.trunc" (printf "%s-headless" (include "nova-postgres.etcd.fullname" .)) -}}
{{- end -}}

{{/* Namespace: namespaceOverride, else the release namespace. Usage: {{ include "nova-postgres.namespace" . }} */}}
{{- define "nova-postgres.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{/* Credentials Secret name (existingSecret through tpl, else <fullname>-credentials).
Usage: {{ include "nova-postgres.secretName" . }} */}}
{{- define "nova-postgres.secretName" -}}
{{- if .Values.auth.existingSecret -}}
{{- tpl .Values.auth.existingSecret . -}}
{{- else -}}
{{- include "nova-postgres.trunc" (printf "%s-credentials" (include "nova-postgres.fullname" .)) -}}
{{- end -}}
{{- end -}}

{{/* Patroni scope (cluster name in the DCS). Usage: {{ include "nova-postgres.scope" . }} */}}
{{- define "nova-postgres.scope" -}}
{{- default (include "nova-postgres.fullname" .) .Values.patroni.scope -}}
{{- end -}}

{{/* Selector labels. Usage: {{ include "nova-postgres.selectorLabels" (dict "ctx" $ "component" "postgres") }} */}}
{{- define "nova-postgres.selectorLabels" -}}
{{- if not .component -}}
{{- fail "nova-postgres.selectorLabels: pass (dict \"ctx\" $ \"component\" \"<name>\")" -}}
{{- end -}}
app.kubernetes.io/name: {{ include "nova-postgres.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Standard labels. Usage: {{ include "nova-postgres.labels" (dict "ctx" $ "component" "postgres") }} */}}
{{- define "nova-postgres.labels" -}}
{{ include "nova-postgres.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: nova
helm.sh/chart: {{ printf "%s-%s" (include "nova-postgres.name" .ctx) .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- with (.ctx.Values.global).labels }}
{{ toYaml . }}
{{- end }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Image reference; global.imageRegistry wins over the image's registry.
Usage: {{ include "nova-postgres.image" (dict "ctx" $ "image" .Values.image) }} */}}
{{- define "nova-postgres.image" -}}
{{- $registry := default .image.registry (.ctx.Values.global).imageRegistry -}}
{{- if not .image.repository -}}
{{- fail "nova-postgres: an image needs a repository (set image.repository / etcd.image.repository)" -}}
{{- end -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry .image.repository .image.tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository .image.tag -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets from global and the chart. Usage: {{ include "nova-postgres.imagePullSecrets" . }} */}}
{{- define "nova-postgres.imagePullSecrets" -}}
{{- $secrets := concat ((.Values.global).imagePullSecrets | default list) (.Values.imagePullSecrets | default list) -}}
{{- if $secrets }}
imagePullSecrets:
{{- range $secrets }}
  - name: {{ if kindIs "map" . }}{{ .name }}{{ else }}{{ . }}{{ end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* storageClassName line from the persistence block or global.storageClass.
Usage: {{ include "nova-postgres.storageClass" (dict "ctx" $ "persistence" .Values.persistence) }} */}}
{{- define "nova-postgres.storageClass" -}}
{{- $sc := default ((.ctx.Values.global).storageClass) .persistence.storageClass -}}
{{- if $sc }}
storageClassName: {{ if eq $sc "-" }}""{{ else }}{{ $sc }}{{ end }}
{{- end }}
{{- end -}}

{{/* Pod anti-affinity: "soft" (preferred), "hard" (required) or "" (none).
Usage: {{ include "nova-postgres.antiAffinity" (dict "ctx" $ "component" "postgres" "mode" .Values.podAntiAffinity) }} */}}
{{- define "nova-postgres.antiAffinity" -}}
{{- if eq .mode "hard" }}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "nova-postgres.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 10 }}
{{- else if eq .mode "soft" }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "nova-postgres.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 12 }}
{{- else if ne .mode "" }}
{{- fail (printf "nova-postgres: podAntiAffinity must be soft, hard or empty, got %q" .mode) }}
{{- end }}
{{- end -}}

{{/* etcd client endpoints (host:port list) Patroni connects to: the members, or etcd.externalHosts.
Usage: {{ include "nova-postgres.etcd.hosts" . }} */}}
{{- define "nova-postgres.etcd.hosts" -}}
{{- if .Values.etcd.enabled -}}
{{- $fullname := include "nova-postgres.etcd.fullname" . -}}
{{- $peer := include "nova-postgres.etcd.peerService" . -}}
{{- $ns := include "nova-postgres.namespace" . -}}
{{- $hosts := list -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $hosts = append $hosts (printf "%s-%d.%s.%s.svc.%s:%d" $fullname $i $peer $ns $.Values.clusterDomain (int $.Values.etcd.clientPort)) -}}
{{- end -}}
{{- join "," $hosts -}}
{{- else -}}
{{- if not .Values.etcd.externalHosts -}}
{{- fail "nova-postgres: etcd.enabled is false, so set etcd.externalHosts (host:port list of an etcd v3 cluster)" -}}
{{- end -}}
{{- join "," .Values.etcd.externalHosts -}}
{{- end -}}
{{- end -}}

{{/* Validation of values that the schema cannot express. Usage: {{ include "nova-postgres.validate" . }} */}}
{{- define "nova-postgres.validate" -}}
{{- $p := .Values.patroni -}}
{{- if gt (add (int $p.loopWait) (mul 2 (int $p.retryTimeout))) (int $p.ttl) -}}
{{- fail (printf "nova-postgres: Patroni needs patroni.loopWait + 2 x patroni.retryTimeout <= patroni.ttl (%d + 2 x %d > %d); lower loopWait/retryTimeout or raise ttl" (int $p.loopWait) (int $p.retryTimeout) (int $p.ttl)) -}}
{{- end -}}
{{- if lt (int .Values.replicas) 1 -}}
{{- fail "nova-postgres: replicas must be at least 1" -}}
{{- end -}}
{{- if and $p.synchronousMode (lt (int .Values.replicas) 2) -}}
{{- fail "nova-postgres: patroni.synchronousMode needs replicas >= 2 (a commit is acknowledged by a standby)" -}}
{{- end -}}
{{- if and .Values.etcd.enabled (eq (mod (int .Values.etcd.replicas) 2) 0) -}}
{{- fail (printf "nova-postgres: etcd.replicas must be odd (1, 3, 5) for a clean quorum, got %d" (int .Values.etcd.replicas)) -}}
{{- end -}}
{{- $dbs := .Values.isolation.databases | default dict -}}
{{- range $login, $cfg := .Values.isolation.logins -}}
{{- if not (regexMatch "^[a-z_][a-z0-9_]{0,40}$" $login) -}}
{{- fail (printf "nova-postgres: isolation.logins key %q must match ^[a-z_][a-z0-9_]{0,40}$ (lower case, digits, underscore)" $login) -}}
{{- end -}}
{{- if not (hasKey $dbs $cfg.database) -}}
{{- fail (printf "nova-postgres: isolation.logins.%s.database %q is not a key of isolation.databases" $login (toString $cfg.database)) -}}
{{- end -}}
{{- $schemas := (get $dbs $cfg.database).schemas | default list -}}
{{- if not (has $cfg.schema $schemas) -}}
{{- fail (printf "nova-postgres: isolation.logins.%s.schema %q is not listed in isolation.databases.%s.schemas" $login (toString $cfg.schema) $cfg.database) -}}
{{- end -}}
{{- end -}}
{{- range $db, $cfg := $dbs -}}
{{- if not (regexMatch "^[a-z_][a-z0-9_]{0,62}$" $db) -}}
{{- fail (printf "nova-postgres: isolation.databases key %q must match ^[a-z_][a-z0-9_]{0,62}$" $db) -}}
{{- end -}}
{{- range ($cfg.schemas | default list) -}}
{{- if not (regexMatch "^[a-z_][a-z0-9_]{0,62}$" .) -}}
{{- fail (printf "nova-postgres: isolation.databases.%s.schemas entry %q must match ^[a-z_][a-z0-9_]{0,62}$" $db .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Environment name holding a login's password. Usage: {{ include "nova-postgres.loginEnv" "user_service" }} */}}
{{- define "nova-postgres.loginEnv" -}}
{{- printf "NOVA_LOGIN_PASSWORD_%s" (upper .) -}}
{{- end -}}
