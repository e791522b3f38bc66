{{/*
Cross-field validation of the umbrella's values, included ONCE (from services/deployment.yaml). What
values.schema.json enforces (port ranges, replicas >= 1, the antiAffinity/waitFor.onTimeout/secrets.jwt enums,
quantities) is not repeated here. Every message names the value to change.
Usage: {{- include "nova.validate" (dict "ctx" $ "services" $services) }}
*/}}
{{- define "nova.validate" -}}
{{- $ctx := .ctx -}}
{{- $domain := include "nova.clusterDomain" $ctx -}}
{{- range $dep := list "redis" "postgres" -}}
{{- $values := get $ctx.Values $dep -}}
{{- if and $values.enabled $values.clusterDomain (ne (toString $values.clusterDomain) $domain) -}}
{{- fail (printf "clusterDomain=%s but %s.clusterDomain=%s: set both to your cluster's DNS domain" $domain $dep $values.clusterDomain) -}}
{{- end -}}
{{- end -}}
{{- include "nova.validate.serviceNames" $ctx -}}
{{- include "nova.validate.dbCapacity" (dict "ctx" $ctx "services" .services) -}}
{{- range $name, $svc := .services -}}
{{- if $svc.enabled -}}
{{- include "nova.validate.service" (dict "ctx" $ctx "svc" $svc "services" $.services) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The chart's own services (the keys of services.microservices in values.yaml; a unit test keeps the two equal).
Usage: {{ include "nova.service.known" . | fromYamlArray }} */}}
{{- define "nova.service.known" -}}
{{- toYaml (list "auth-service" "messaging-service" "search-service" "streaming-api" "user-service") -}}
{{- end -}}

{{/* An entry of services.microservices that is not one of the chart's services must be a complete new service
(its own port and image.repository); else it is most likely a typo, which would leave the intended service as
it was: fail with the nearest known name. Usage: {{ include "nova.validate.serviceNames" $ }} */}}
{{- define "nova.validate.serviceNames" -}}
{{- $known := include "nova.service.known" . | fromYamlArray -}}
{{- range $name, $own := .Values.services.microservices -}}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $name) -}}
{{- fail (printf "services.microservices.%s: a service name must be a lower-case DNS label (a-z, 0-9, -)" $name) -}}
{{- end -}}
{{- if and (not (has $name $known)) (not (and (kindIs "map" $own) (hasKey $own "port") (dig "image" "repository" "" $own))) -}}
{{- fail (printf "services.microservices.%s is not one of the chart's services (did you mean %s?): fix the name, or give a new service at least its port and image.repository" $name (include "nova-common.nearest" (dict "name" $name "candidates" $known))) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Checks of one enabled service's merged settings against each other and the dependencies.
Usage: {{ include "nova.validate.service" (dict "ctx" $ "svc" $svc "services" $services) }} */}}
{{- define "nova.validate.service" -}}
{{- $ctx := .ctx -}}
{{- $cfg := .svc -}}
{{- $where := printf "services.microservices.%s" $cfg.name -}}
{{- $port := int $cfg.port -}}
{{- if and $cfg.metrics.enabled (eq (int $cfg.metrics.port) $port) -}}
{{- fail (printf "%s.metrics.port equals %s.port (%d): give the metrics endpoint its own port" $where $where $port) -}}
{{- end -}}
{{- if and $cfg.autoscaling.enabled (lt (int $cfg.autoscaling.maxReplicas) (int $cfg.replicas)) -}}
{{- fail (printf "%s.autoscaling.maxReplicas=%v is below %s.replicas=%v (the HPA minimum): raise maxReplicas" $where $cfg.autoscaling.maxReplicas $where $cfg.replicas) -}}
{{- end -}}
{{- if ge (int $cfg.preStop.sleepSeconds) (int $cfg.terminationGracePeriodSeconds) -}}
{{- fail (printf "%s.preStop.sleepSeconds=%v must be shorter than terminationGracePeriodSeconds=%v, or the pod is killed before it drains" $where $cfg.preStop.sleepSeconds $cfg.terminationGracePeriodSeconds) -}}
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
{{- include "nova.validate.traffic" (dict "ctx" $ctx "svc" $cfg) -}}
{{- include "nova.validate.kafka" (dict "ctx" $ctx "svc" $cfg) -}}
{{- range $cfg.calls -}}
{{- if not (hasKey $.services .) -}}
{{- fail (printf "%s.calls names %q, which is not a service in services.microservices" $where .) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The services' database pools fit what serves them: the sum over enabled services that use PostgreSQL of
(maximum pods: autoscaling.maxReplicas, else replicas) x resilience.dbPoolSize must fit the -pooler-rw poolers'
clients (postgres.pooler.maxClientConn x (postgres.pooler.replicas - 1): one pooler pod may be lost) or, with
no pooler, PostgreSQL's max_connections minus superuser_reserved_connections and postgresql.reservedConnections.
The pooler's own server connections are checked by nova-postgres (nova-postgres.pooler.validate). Fails with the
numbers and the keys to change. Usage: {{ include "nova.validate.dbCapacity" (dict "ctx" $ "services" $services) }} */}}
{{- define "nova.validate.dbCapacity" -}}
{{- $ctx := .ctx -}}
{{- if $ctx.Values.postgres.enabled -}}
{{- $sum := 0 -}}
{{- $parts := list -}}
{{- range $name, $svc := .services -}}
{{- if and $svc.enabled $svc.database.enabled -}}
{{- $pods := int (ternary $svc.autoscaling.maxReplicas $svc.replicas (and $svc.autoscaling.enabled true)) -}}
{{- $pool := int $svc.resilience.dbPoolSize -}}
{{- $sum = add $sum (mul $pods $pool) -}}
{{- $parts = append $parts (printf "%s %d pods x %d" $name $pods $pool) -}}
{{- end -}}
{{- end -}}
{{- $pg := $ctx.Values.postgres -}}
{{- $used := printf "%d connections (%s; services.microservices.<name>.resilience.dbPoolSize x autoscaling.maxReplicas or replicas)" $sum (join ", " $parts) -}}
{{- if eq (include "nova.postgres.pooled" $ctx) "true" -}}
{{- $replicas := int (dig "pooler" "replicas" 2 $pg) -}}
{{- $perPod := int (dig "pooler" "maxClientConn" 1000 $pg) -}}
{{- $capacity := mul $perPod (max 1 (sub $replicas 1)) -}}
{{- if gt $sum $capacity -}}
{{- fail (printf "database capacity: the services' pools may open %s, more than the poolers take with one pooler pod lost: postgres.pooler.maxClientConn=%d x (postgres.pooler.replicas=%d - 1) = %d: lower dbPoolSize or maxReplicas, or raise postgres.pooler.maxClientConn or replicas" $used $perPod $replicas $capacity) -}}
{{- end -}}
{{- else -}}
{{- $params := dig "postgresql" "parameters" dict $pg -}}
{{- $max := int (dig "max_connections" 100 $params) -}}
{{- $superuser := int (dig "superuser_reserved_connections" 3 $params) -}}
{{- $reserved := int (dig "postgresql" "reservedConnections" 20 $pg) -}}
{{- $budget := sub (sub $max $superuser) $reserved -}}
{{- if gt $sum $budget -}}
{{- fail (printf "database capacity: the services' pools may open %s, more than PostgreSQL serves: postgres.postgresql.parameters.max_connections=%d - superuser_reserved_connections=%d - postgres.postgresql.reservedConnections=%d = %d: turn on the pooler (postgres.pooler.enabled=true), lower dbPoolSize or maxReplicas, or raise max_connections" $used $max $superuser $reserved $budget) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
