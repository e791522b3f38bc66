{{/*
Names, labels and namespaces of the nova umbrella chart.
Every helper that takes several inputs takes a dict; every `fail` names the value to change.
*/}}

{{/* Truncate a DNS label to 63 characters (the one place this rule lives). Usage: {{ include "nova.trunc" "some-name" }} */}}
{{- define "nova.trunc" -}}
{{- . | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Chart name. Usage: {{ include "nova.name" $ }} */}}
{{- define "nova.name" -}}
{{- include "nova.trunc" (default .Chart.Name .Values.nameOverride) -}}
{{- end -}}

{{/* Full name: fullnameOverride, else the release name. Usage: {{ include "nova.fullname" $ }} */}}
{{- define "nova.fullname" -}}
{{- include "nova.trunc" (default .Release.Name .Values.fullnameOverride) -}}
{{- end -}}

{{/* Name of one object of a component: <fullname>-<component>. Usage: {{ include "nova.componentName" (dict "ctx" $ "component" "user-service") }} */}}
{{- define "nova.componentName" -}}
{{- include "nova.trunc" (printf "%s-%s" (include "nova.fullname" .ctx) .component) -}}
{{- end -}}

{{/* Value of the helm.sh/chart label. Usage: {{ include "nova.chart" $ }} */}}
{{- define "nova.chart" -}}
{{- include "nova.trunc" (printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_") -}}
{{- end -}}

{{/* Selector labels (name, instance, component only). Usage: {{ include "nova.selectorLabels" (dict "ctx" $ "component" "user-service") }} */}}
{{- define "nova.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nova.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{/* Standard labels. Usage: {{ include "nova.labels" (dict "ctx" $ "component" "user-service" "version" "1.2.3") }} */}}
{{- define "nova.labels" -}}
{{ include "nova.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .ctx.Chart.AppVersion .version) | toString | replace "@" "_" | replace ":" "_" | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: nova
helm.sh/chart: {{ include "nova.chart" .ctx }}
{{- with .ctx.Values.global.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Cluster DNS domain; the subcharts must agree (each reads its own clusterDomain). Usage: {{ include "nova.clusterDomain" $ }} */}}
{{- define "nova.clusterDomain" -}}
{{- $domain := default "cluster.local" .Values.clusterDomain -}}
{{- range $dep := list "redis" "postgres" -}}
{{- $values := get $.Values $dep -}}
{{- if and $values.enabled $values.clusterDomain (ne (toString $values.clusterDomain) $domain) -}}
{{- fail (printf "clusterDomain=%s but %s.clusterDomain=%s: set both to your cluster's DNS domain" $domain $dep $values.clusterDomain) -}}
{{- end -}}
{{- end -}}
{{- $domain -}}
{{- end -}}

{{/* Namespace of the microservices: services.namespace, else the release namespace. Usage: {{ include "nova.servicesNamespace" $ }} */}}
{{- define "nova.servicesNamespace" -}}
{{- default .Release.Namespace .Values.services.namespace -}}
{{- end -}}

{{/* In-cluster DNS name of a Service. Usage: {{ include "nova.svcHost" (dict "ctx" $ "name" "x" "namespace" "ns") }} */}}
{{- define "nova.svcHost" -}}
{{- printf "%s.%s.svc.%s" .name .namespace (include "nova.clusterDomain" .ctx) -}}
{{- end -}}

{{/* Image reference from {registry, repository, tag, digest}; global.imageRegistry wins over the per-image registry.
Usage: {{ include "nova.image" (dict "ctx" $ "image" .image "what" "services.microservices.user-service.image") }} */}}
{{- define "nova.image" -}}
{{- $img := .image -}}
{{- if not $img.repository -}}
{{- fail (printf "%s.repository is empty: set the image repository (for a test cluster e.g. e2e-test-images/agnhost)" .what) -}}
{{- end -}}
{{- $registry := default $img.registry .ctx.Values.global.imageRegistry -}}
{{- $ref := ternary (printf "%s/%s" $registry $img.repository) $img.repository (ne (toString $registry) "") -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $ref $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (toString (default .ctx.Chart.AppVersion $img.tag)) -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets of every pod (global.imagePullSecrets). Usage: {{ include "nova.imagePullSecrets" $ }} */}}
{{- define "nova.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ if kindIs "map" . }}{{ .name }}{{ else }}{{ . }}{{ end }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Deep merge: copies .src into .dst (mutating .dst); maps merge key by key, everything else (lists, scalars,
false, 0, "") replaces. Unlike sprig's mergeOverwrite, a per-service `false` overrides a default `true`.
Usage: {{- include "nova.deepMerge" (dict "dst" $copy "src" $override) -}}
*/}}
{{- define "nova.deepMerge" -}}
{{- $dst := .dst -}}
{{- range $key, $value := .src -}}
{{- $current := get $dst $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $current) -}}
{{- include "nova.deepMerge" (dict "dst" $current "src" $value) -}}
{{- else if or (kindIs "map" $value) (kindIs "slice" $value) -}}
{{- $_ := set $dst $key (deepCopy $value) -}}
{{- else -}}
{{- $_ := set $dst $key $value -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Effective settings of one microservice as YAML: services.defaults deep-merged with services.microservices.<name>,
validated. Usage: {{- $svc := include "nova.service.config" (dict "ctx" $ "name" "user-service") | fromYaml }}
*/}}
{{- define "nova.service.config" -}}
{{- $ctx := .ctx -}}
{{- $name := .name -}}
{{- $own := get $ctx.Values.services.microservices $name -}}
{{- if not (kindIs "map" $own) -}}
{{- fail (printf "services.microservices.%s must be a map of settings (see services.defaults), got %v" $name $own) -}}
{{- end -}}
{{- $cfg := deepCopy $ctx.Values.services.defaults -}}
{{- include "nova.deepMerge" (dict "dst" $cfg "src" $own) -}}
{{- $_ := set $cfg "name" $name -}}
{{- if not $cfg.image.repository -}}
{{- $_ := set $cfg.image "repository" (printf "nova/%s" $name) -}}
{{- end -}}
{{- $_ := set $cfg "fullname" (include "nova.componentName" (dict "ctx" $ctx "component" $name)) -}}
{{- $where := printf "services.microservices.%s" $name -}}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $name) -}}
{{- fail (printf "%s: a service name must be a lower-case DNS label (a-z, 0-9, -)" $where) -}}
{{- end -}}
{{- $port := int $cfg.port -}}
{{- if or (lt $port 1024) (gt $port 65535) -}}
{{- fail (printf "%s.port=%v: use a port between 1024 and 65535 (the containers run as non-root)" $where $cfg.port) -}}
{{- end -}}
{{- if and $cfg.metrics.enabled (eq (int $cfg.metrics.port) $port) -}}
{{- fail (printf "%s.metrics.port equals %s.port (%d): give the metrics endpoint its own port" $where $where $port) -}}
{{- end -}}
{{- if lt (int $cfg.replicas) 1 -}}
{{- fail (printf "%s.replicas=%v: at least 1 replica" $where $cfg.replicas) -}}
{{- end -}}
{{- if and $cfg.autoscaling.enabled (lt (int $cfg.autoscaling.maxReplicas) (int $cfg.replicas)) -}}
{{- fail (printf "%s.autoscaling.maxReplicas=%v is below %s.replicas=%v (the HPA minimum): raise maxReplicas" $where $cfg.autoscaling.maxReplicas $where $cfg.replicas) -}}
{{- end -}}
{{- if ge (int $cfg.preStop.sleepSeconds) (int $cfg.terminationGracePeriodSeconds) -}}
{{- fail (printf "%s.preStop.sleepSeconds=%v must be shorter than terminationGracePeriodSeconds=%v, or the pod is killed before it drains" $where $cfg.preStop.sleepSeconds $cfg.terminationGracePeriodSeconds) -}}
{{- end -}}
{{- if not (has $cfg.antiAffinity (list "soft" "hard" "none")) -}}
{{- fail (printf "%s.antiAffinity=%v: use soft, hard or none" $where $cfg.antiAffinity) -}}
{{- end -}}
{{- if not (has $cfg.waitFor.onTimeout (list "fail" "continue")) -}}
{{- fail (printf "%s.waitFor.onTimeout=%v: use fail (the pod restarts the wait) or continue (start degraded)" $where $cfg.waitFor.onTimeout) -}}
{{- end -}}
{{- if not (has $cfg.secrets.jwt (list "sign" "verify" "none")) -}}
{{- fail (printf "%s.secrets.jwt=%v: use sign, verify or none" $where $cfg.secrets.jwt) -}}
{{- end -}}
{{- if and $cfg.database.enabled (not $cfg.database.login) -}}
{{- fail (printf "%s.database.login is empty: every service needs its own database login (or set database.enabled=false)" $where) -}}
{{- end -}}
{{- if and $cfg.database.enabled $ctx.Values.postgres.enabled -}}
{{- $logins := dig "isolation" "logins" dict $ctx.Values.postgres -}}
{{- if $logins -}}
{{- $entry := get $logins $cfg.database.login -}}
{{- if not $entry -}}
{{- fail (printf "%s.database.login=%s is not a login the nova-postgres chart creates: add postgres.isolation.logins.%s (database, schema)" $where $cfg.database.login $cfg.database.login) -}}
{{- end -}}
{{- if ne (toString (get $entry "database")) (toString $cfg.database.name) -}}
{{- fail (printf "%s.database.name=%s but postgres.isolation.logins.%s.database=%v: make them the same database" $where $cfg.database.name $cfg.database.login (get $entry "database")) -}}
{{- end -}}
{{- if and $cfg.database.schema (ne (toString (get $entry "schema")) (toString $cfg.database.schema)) -}}
{{- fail (printf "%s.database.schema=%s but postgres.isolation.logins.%s.schema=%v: make them the same schema" $where $cfg.database.schema $cfg.database.login (get $entry "schema")) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $cfg.redis.enabled $cfg.redis.user -}}
{{- if not $ctx.Values.redis.enabled -}}
{{- fail (printf "%s.redis.user=%s needs the nova-redis chart (redis.enabled=true), which creates the ACL users" $where $cfg.redis.user) -}}
{{- end -}}
{{- if not (hasKey (default dict $ctx.Values.redis.aclUsers) $cfg.redis.user) -}}
{{- fail (printf "%s.redis.user=%s is not a Redis ACL user: add redis.aclUsers.%s.keyPrefix (e.g. \"%s:\")" $where $cfg.redis.user $cfg.redis.user $cfg.redis.user) -}}
{{- end -}}
{{- end -}}
{{- range $cfg.calls -}}
{{- if not (hasKey $ctx.Values.services.microservices .) -}}
{{- fail (printf "%s.calls names %q, which is not a service in services.microservices" $where .) -}}
{{- end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* Names of the enabled microservices, sorted, as a YAML list. Usage: {{- range include "nova.service.names" $ | fromYamlArray }} */}}
{{- define "nova.service.names" -}}
{{- $names := list -}}
{{- range $name, $own := .Values.services.microservices -}}
{{- if or (not (kindIs "map" $own)) (ne (toString (dig "enabled" true $own)) "false") -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- toYaml (sortAlpha $names) -}}
{{- end -}}

{{/* ---------------------------------------------------------------- Redis (subchart or external) */}}

{{/* Full name of the nova-redis subchart (contract: fullnameOverride, else <release>-redis). Usage: {{ include "nova.redis.fullname" $ }} */}}
{{- define "nova.redis.fullname" -}}
{{- include "nova.trunc" (default (printf "%s-redis" .Release.Name) .Values.redis.fullnameOverride) -}}
{{- end -}}

{{/* Namespace of Redis. Usage: {{ include "nova.redis.namespace" $ }} */}}
{{- define "nova.redis.namespace" -}}
{{- default .Release.Namespace .Values.redis.namespaceOverride -}}
{{- end -}}

{{/* Sentinel master set name. Usage: {{ include "nova.redis.masterSet" $ }} */}}
{{- define "nova.redis.masterSet" -}}
{{- if .Values.redis.enabled -}}
{{- dig "sentinel" "masterSet" "nova" .Values.redis -}}
{{- else -}}
{{- default "nova" .Values.externalRedis.masterSet -}}
{{- end -}}
{{- end -}}

{{/* Sentinel addresses, comma separated host:port. Usage: {{ include "nova.redis.sentinelHosts" $ }} */}}
{{- define "nova.redis.sentinelHosts" -}}
{{- if .Values.redis.enabled -}}
{{- printf "%s:%d" (include "nova.svcHost" (dict "ctx" . "name" (printf "%s-sentinel" (include "nova.redis.fullname" .)) "namespace" (include "nova.redis.namespace" .))) (int (dig "sentinel" "port" 26379 .Values.redis)) -}}
{{- else -}}
{{- join "," .Values.externalRedis.sentinelAddrs -}}
{{- end -}}
{{- end -}}

{{/* Write-safe Redis endpoint host (reaches only the master). Usage: {{ include "nova.redis.masterHost" $ }} */}}
{{- define "nova.redis.masterHost" -}}
{{- if .Values.redis.enabled -}}
{{- include "nova.svcHost" (dict "ctx" . "name" (printf "%s-master" (include "nova.redis.fullname" .)) "namespace" (include "nova.redis.namespace" .)) -}}
{{- else if .Values.externalRedis.host -}}
{{- .Values.externalRedis.host -}}
{{- else -}}
{{- fail "redis.enabled=false: set externalRedis.host (and externalRedis.sentinelAddrs) to the Redis the services use" -}}
{{- end -}}
{{- end -}}

{{/* Redis port of the write-safe endpoint. Usage: {{ include "nova.redis.port" $ }} */}}
{{- define "nova.redis.port" -}}
{{- if .Values.redis.enabled -}}
{{- int (dig "redis" "port" 6379 .Values.redis) -}}
{{- else -}}
{{- int (default 6379 .Values.externalRedis.port) -}}
{{- end -}}
{{- end -}}

{{/* Whether Redis requires a password. Usage: {{ if eq (include "nova.redis.authEnabled" $) "true" }} */}}
{{- define "nova.redis.authEnabled" -}}
{{- if .Values.redis.enabled -}}
{{- ne (toString (dig "auth" "enabled" true .Values.redis)) "false" -}}
{{- else -}}
{{- ne (toString .Values.externalRedis.existingSecret) "" -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret the umbrella generates for Redis. Usage: {{ include "nova.redis.managedSecretName" $ }} */}}
{{- define "nova.redis.managedSecretName" -}}
{{- include "nova.trunc" (printf "%s-redis-credentials" .Release.Name) -}}
{{- end -}}

{{/* Secret holding redis-password: redis.auth.existingSecret (tpl) or externalRedis.existingSecret. Usage: {{ include "nova.redis.secretName" $ }} */}}
{{- define "nova.redis.secretName" -}}
{{- if .Values.redis.enabled -}}
{{- $name := tpl (toString (dig "auth" "existingSecret" "" .Values.redis)) . -}}
{{- if not $name -}}
{{- fail (printf "redis.auth.existingSecret is empty: the umbrella owns the Redis password; keep the default %q (generated) or name your own Secret" (include "nova.redis.managedSecretName" .)) -}}
{{- end -}}
{{- $name -}}
{{- else -}}
{{- .Values.externalRedis.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* Whether the umbrella generates the Redis password. Usage: {{ if eq (include "nova.redis.generated" $) "true" }} */}}
{{- define "nova.redis.generated" -}}
{{- and .Values.redis.enabled (eq (include "nova.redis.authEnabled" .) "true") (eq (include "nova.redis.secretName" .) (include "nova.redis.managedSecretName" .)) -}}
{{- end -}}

{{/* ---------------------------------------------------------------- PostgreSQL (subchart or external) */}}

{{/* Full name of the nova-postgres subchart (contract: fullnameOverride, else <release>-postgres). Usage: {{ include "nova.postgres.fullname" $ }} */}}
{{- define "nova.postgres.fullname" -}}
{{- include "nova.trunc" (default (printf "%s-postgres" .Release.Name) .Values.postgres.fullnameOverride) -}}
{{- end -}}

{{/* Namespace of PostgreSQL. Usage: {{ include "nova.postgres.namespace" $ }} */}}
{{- define "nova.postgres.namespace" -}}
{{- default .Release.Namespace .Values.postgres.namespaceOverride -}}
{{- end -}}

{{/* Read-write host (the current primary). Usage: {{ include "nova.postgres.primaryHost" $ }} */}}
{{- define "nova.postgres.primaryHost" -}}
{{- if .Values.postgres.enabled -}}
{{- include "nova.svcHost" (dict "ctx" . "name" (printf "%s-primary" (include "nova.postgres.fullname" .)) "namespace" (include "nova.postgres.namespace" .)) -}}
{{- else if .Values.externalDatabase.host -}}
{{- .Values.externalDatabase.host -}}
{{- else -}}
{{- fail "postgres.enabled=false: set externalDatabase.host to the PostgreSQL the services use" -}}
{{- end -}}
{{- end -}}

{{/* Read-only host (the replicas). Usage: {{ include "nova.postgres.readHost" $ }} */}}
{{- define "nova.postgres.readHost" -}}
{{- if .Values.postgres.enabled -}}
{{- include "nova.svcHost" (dict "ctx" . "name" (printf "%s-replicas" (include "nova.postgres.fullname" .)) "namespace" (include "nova.postgres.namespace" .)) -}}
{{- else -}}
{{- default (include "nova.postgres.primaryHost" .) .Values.externalDatabase.readHost -}}
{{- end -}}
{{- end -}}

{{/* PostgreSQL port. Usage: {{ include "nova.postgres.port" $ }} */}}
{{- define "nova.postgres.port" -}}
{{- if .Values.postgres.enabled -}}
{{- int (dig "postgresql" "port" 5432 .Values.postgres) -}}
{{- else -}}
{{- int (default 5432 .Values.externalDatabase.port) -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret the umbrella generates for PostgreSQL. Usage: {{ include "nova.postgres.managedSecretName" $ }} */}}
{{- define "nova.postgres.managedSecretName" -}}
{{- include "nova.trunc" (printf "%s-postgres-credentials" .Release.Name) -}}
{{- end -}}

{{/* Secret holding <login>-password keys: postgres.auth.existingSecret (tpl) or externalDatabase.existingSecret. Usage: {{ include "nova.postgres.secretName" $ }} */}}
{{- define "nova.postgres.secretName" -}}
{{- if .Values.postgres.enabled -}}
{{- $name := tpl (toString (dig "auth" "existingSecret" "" .Values.postgres)) . -}}
{{- if not $name -}}
{{- fail (printf "postgres.auth.existingSecret is empty: the umbrella owns the database passwords; keep the default %q (generated) or name your own Secret" (include "nova.postgres.managedSecretName" .)) -}}
{{- end -}}
{{- $name -}}
{{- else if .Values.externalDatabase.existingSecret -}}
{{- .Values.externalDatabase.existingSecret -}}
{{- else -}}
{{- fail "postgres.enabled=false: set externalDatabase.existingSecret to a Secret with a <login>-password key per service login" -}}
{{- end -}}
{{- end -}}

{{/* Whether the umbrella generates the database passwords. Usage: {{ if eq (include "nova.postgres.generated" $) "true" }} */}}
{{- define "nova.postgres.generated" -}}
{{- and .Values.postgres.enabled (eq (include "nova.postgres.secretName" .) (include "nova.postgres.managedSecretName" .)) -}}
{{- end -}}

{{/* Database logins the credentials must cover: the services' logins plus postgres.isolation.logins. Usage: {{ include "nova.postgres.logins" $ | fromYamlArray }} */}}
{{- define "nova.postgres.logins" -}}
{{- $logins := list -}}
{{- range include "nova.service.names" . | fromYamlArray -}}
{{- $svc := include "nova.service.config" (dict "ctx" $ "name" .) | fromYaml -}}
{{- if $svc.database.enabled -}}
{{- $logins = append $logins $svc.database.login -}}
{{- end -}}
{{- end -}}
{{- if .Values.postgres.enabled -}}
{{- range $login, $_ := (dig "isolation" "logins" dict .Values.postgres) -}}
{{- $logins = append $logins $login -}}
{{- end -}}
{{- if dig "metrics" "enabled" false .Values.postgres -}}
{{- $logins = append $logins (dig "metrics" "login" "nova_metrics" .Values.postgres) -}}
{{- end -}}
{{- end -}}
{{- toYaml (sortAlpha (uniq $logins)) -}}
{{- end -}}

{{/* ---------------------------------------------------------------- Secrets and namespaces */}}

{{/* Name of a service's own Secret (connection settings). Usage: {{ include "nova.service.secretName" (dict "ctx" $ "name" "user-service") }} */}}
{{- define "nova.service.secretName" -}}
{{- include "nova.componentName" (dict "ctx" .ctx "component" .name) -}}
{{- end -}}

{{/* Name of the generated JWT key pair Secret, or secrets.jwt.existingSecret. Usage: {{ include "nova.jwt.secretName" $ }} */}}
{{- define "nova.jwt.secretName" -}}
{{- default (include "nova.componentName" (dict "ctx" . "component" "jwt")) .Values.secrets.jwt.existingSecret -}}
{{- end -}}

{{/* Name of the generated TURN secret, or secrets.turn.existingSecret. Usage: {{ include "nova.turn.secretName" $ }} */}}
{{- define "nova.turn.secretName" -}}
{{- default (include "nova.componentName" (dict "ctx" . "component" "turn")) .Values.secrets.turn.existingSecret -}}
{{- end -}}

{{/* Namespaces this release places objects in other than the release namespace, as a YAML list. Usage: {{ include "nova.namespaces" $ | fromYamlArray }} */}}
{{- define "nova.namespaces" -}}
{{- $all := list (include "nova.servicesNamespace" .) -}}
{{- if .Values.redis.enabled }}{{ $all = append $all (include "nova.redis.namespace" .) }}{{ end -}}
{{- if .Values.postgres.enabled }}{{ $all = append $all (include "nova.postgres.namespace" .) }}{{ end -}}
{{- toYaml (without (uniq $all) .Release.Namespace | sortAlpha) -}}
{{- end -}}

{{/* The restricted container securityContext (merged with an override dict). Usage: {{ include "nova.containerSecurityContext" (dict "ctx" $ "override" $svc.containerSecurityContext) }} */}}
{{- define "nova.containerSecurityContext" -}}
{{- $sc := deepCopy .ctx.Values.securityContext.container -}}
{{- include "nova.deepMerge" (dict "dst" $sc "src" (default dict .override)) -}}
{{- toYaml $sc -}}
{{- end -}}

{{/* The restricted pod securityContext (merged with an override dict). Usage: {{ include "nova.podSecurityContext" (dict "ctx" $ "override" $svc.podSecurityContext) }} */}}
{{- define "nova.podSecurityContext" -}}
{{- $sc := deepCopy .ctx.Values.securityContext.pod -}}
{{- include "nova.deepMerge" (dict "dst" $sc "src" (default dict .override)) -}}
{{- toYaml $sc -}}
{{- end -}}

{{/*
Data of a service's ConfigMap (resilience settings, logging, peer URLs), read by the container as env.
Usage: {{ include "nova.service.configData" (dict "ctx" $ "svc" $svc) }}
*/}}
{{- define "nova.service.configData" -}}
{{- $ctx := .ctx -}}
{{- $svc := .svc -}}
{{- $r := $svc.resilience -}}
{{- $data := dict
  "SERVICE_NAME" $svc.name
  "LOG_FORMAT" "json"
  "LOG_LEVEL" (toString $svc.logLevel)
  "HTTP_REQUEST_TIMEOUT" (toString $r.httpRequestTimeout)
  "HTTP_CONNECT_TIMEOUT" (toString $r.httpConnectTimeout)
  "HTTP_POOL_SIZE" (toString $r.httpPoolSize)
  "CIRCUIT_BREAKER_FAILURE_RATE" (toString $r.circuitBreakerFailureRate)
  "RETRY_ATTEMPTS" (toString $r.retryAttempts)
  "RETRY_BACKOFF" (toString $r.retryBackoff)
-}}
{{- $ns := include "nova.servicesNamespace" $ctx -}}
{{- range $svc.calls -}}
{{- $peer := include "nova.service.config" (dict "ctx" $ctx "name" .) | fromYaml -}}
{{- $host := include "nova.svcHost" (dict "ctx" $ctx "name" $peer.fullname "namespace" $ns) -}}
{{- $_ := set $data (printf "%s_URL" (. | upper | replace "-" "_")) (printf "http://%s:%d" $host (int $peer.port)) -}}
{{- end -}}
{{- if $svc.secrets.apns -}}
{{- $_ := set $data "APNS_ENABLED" (toString (ne (toString $ctx.Values.secrets.apns.existingSecret) "")) -}}
{{- end -}}
{{- if $svc.secrets.turn -}}
{{- $_ := set $data "TURN_URIS" (join "," $ctx.Values.secrets.turn.uris) -}}
{{- end -}}
{{- toYaml $data -}}
{{- end -}}

{{/*
A credential value: the one already in the looked-up Secret (.found, from `lookup`), else a new one.
On an upgrade that reaches the cluster (.reachable) and finds no Secret at all, `fail` instead of creating a
new password (secrets.generateMissingOnUpgrade=true allows it). .generate is "password", "long" or a literal.
Usage: {{ include "nova.secrets.value" (dict "ctx" $ "found" $found "key" "redis-password" "ref" "Secret ns/name" "reachable" true "generate" "password") }}
*/}}
{{- define "nova.secrets.value" -}}
{{- $data := default dict (get (default dict .found) "data") -}}
{{- if hasKey $data .key -}}
{{- index $data .key | b64dec -}}
{{- else if and .ctx.Release.IsUpgrade .reachable (empty .found) (not .ctx.Values.secrets.generateMissingOnUpgrade) -}}
{{- fail (printf "%s is missing on this upgrade, so its %s would be re-generated and no longer match the data already written with it. Restore the Secret (or name your own with existingSecret), or set secrets.generateMissingOnUpgrade=true if this credential is new (e.g. a dependency enabled after install)." .ref .key) -}}
{{- else if eq .generate "password" -}}
{{- randAlphaNum (int .ctx.Values.secrets.passwordLength) -}}
{{- else if eq .generate "long" -}}
{{- randAlphaNum 64 -}}
{{- else -}}
{{- .generate -}}
{{- end -}}
{{- end -}}

{{/* Annotations of a Secret holding generated credentials. Usage: {{ include "nova.secrets.annotations" (dict "ctx" $ "keep" true) }} */}}
{{- define "nova.secrets.annotations" -}}
{{- if and .keep .ctx.Values.secrets.keepOnUninstall }}
helm.sh/resource-policy: keep
{{- end }}
{{- if .ctx.Values.secrets.argocdSkipGenerated }}
argocd.argoproj.io/hook: Skip
{{- end }}
{{- end -}}

{{/*
Env entries of a service container that come from Secrets the umbrella does not render (existing Secrets):
DATABASE_PASSWORD/URL, REDIS_PASSWORD/URL, REDIS_SENTINEL_PASSWORD (optional key sentinel-password: without
it Sentinel uses redis-password), KAFKA_BROKERS. Generated values arrive with envFrom instead.
Usage: {{ include "nova.service.secretEnv" (dict "ctx" $ "svc" $svc) | nindent 12 }}
*/}}
{{- define "nova.service.secretEnv" -}}
{{- $ctx := .ctx -}}
{{- $svc := .svc -}}
{{- if and $svc.database.enabled (ne (include "nova.postgres.generated" $ctx) "true") }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "nova.postgres.secretName" $ctx }}
      key: {{ printf "%s-password" $svc.database.login }}
- name: DATABASE_URL
  value: "postgresql://$(DATABASE_USER):$(DATABASE_PASSWORD)@$(DATABASE_HOST):$(DATABASE_PORT)/$(DATABASE_NAME)"
{{- end }}
{{- if and $svc.redis.enabled (eq (include "nova.redis.authEnabled" $ctx) "true") (ne (include "nova.redis.generated" $ctx) "true") }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "nova.redis.secretName" $ctx }}
      key: {{ ternary (printf "acl-%s-password" $svc.redis.user) "redis-password" (ne (toString $svc.redis.user) "") }}
- name: REDIS_SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "nova.redis.secretName" $ctx }}
      key: sentinel-password
      optional: true
- name: REDIS_URL
  value: {{ printf "redis://%s:$(REDIS_PASSWORD)@%s:%s/%d" (ternary "$(REDIS_USERNAME)" "" (ne (toString $svc.redis.user) "")) (include "nova.redis.masterHost" $ctx) (include "nova.redis.port" $ctx) (int $svc.redis.db) | quote }}
{{- end }}
{{- if $ctx.Values.secrets.kafka.existingSecret }}
- name: KAFKA_BROKERS
  valueFrom:
    secretKeyRef:
      name: {{ $ctx.Values.secrets.kafka.existingSecret }}
      key: kafka-brokers
{{- end }}
{{- end -}}

{{/* NetworkPolicy peer: the pods of a dependency subchart (contract labels name/instance) in its namespace.
Usage: {{ include "nova.netpol.dependencyPeer" (dict "ctx" $ "name" "nova-redis" "namespace" "nova-redis") }} */}}
{{- define "nova.netpol.dependencyPeer" -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .namespace }}
  podSelector:
    matchLabels:
      app.kubernetes.io/name: {{ .name }}
      app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end -}}

{{/* NetworkPolicy egress rule to the Redis pods and the master proxy: Redis and Sentinel ports only. Usage: {{ include "nova.netpol.redisEgress" $ }} */}}
{{- define "nova.netpol.redisEgress" -}}
- to:
    {{- include "nova.netpol.dependencyPeer" (dict "ctx" . "name" "nova-redis" "namespace" (include "nova.redis.namespace" .)) | nindent 4 }}
  ports:
    - port: {{ include "nova.redis.port" . }}
      protocol: TCP
    - port: {{ int (dig "sentinel" "port" 26379 .Values.redis) }}
      protocol: TCP
{{- end -}}

{{/* NetworkPolicy egress rule to the PostgreSQL pods: the PostgreSQL port only. Usage: {{ include "nova.netpol.postgresEgress" $ }} */}}
{{- define "nova.netpol.postgresEgress" -}}
- to:
    {{- include "nova.netpol.dependencyPeer" (dict "ctx" . "name" "nova-postgres" "namespace" (include "nova.postgres.namespace" .)) | nindent 4 }}
  ports:
    - port: {{ include "nova.postgres.port" . }}
      protocol: TCP
{{- end -}}

{{/* NetworkPolicy egress rule to DNS. Usage: {{ include "nova.netpol.dnsEgress" $ }} */}}
{{- define "nova.netpol.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.namespaceSelector | nindent 10 }}
      podSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.podSelector | nindent 10 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end -}}

{{/* NetworkPolicy peer: pods of this chart in the services namespace with a component label.
Usage: {{ include "nova.netpol.componentPeer" (dict "ctx" $ "component" "user-service") }} */}}
{{- define "nova.netpol.componentPeer" -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ include "nova.servicesNamespace" .ctx }}
  podSelector:
    matchLabels:
      {{- include "nova.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 6 }}
{{- end -}}
