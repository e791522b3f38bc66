{{/* Roles of the pooler that run: rw always, ro with pooler.readOnly.enabled. Usage: {{ range (include "nova-postgres.pooler.roles" . | fromJsonArray) }} */}}
{{- define "nova-postgres.pooler.roles" -}}
{{- $roles := list "rw" -}}
{{- if .Values.pooler.readOnly.enabled }}{{ $roles = append $roles "ro" }}{{ end -}}
{{- toJson $roles -}}
{{- end -}}

{{/* Name of one pooler role's objects: <fullname>-pooler-<role>. Usage: {{ include "nova-postgres.pooler.name" (dict "ctx" $ "role" "rw") }} */}}
{{- define "nova-postgres.pooler.name" -}}
{{- include "nova-postgres.name.suffixed" (dict "ctx" .ctx "suffix" (printf "pooler-%s" .role)) -}}
{{- end -}}

{{/* Selector labels of one pooler role (component pooler-<role>). Usage: {{ include "nova-postgres.pooler.selectorLabels" (dict "ctx" $ "role" "rw") }} */}}
{{- define "nova-postgres.pooler.selectorLabels" -}}
{{- include "nova-postgres.selectorLabels" (dict "ctx" .ctx "component" (printf "pooler-%s" .role)) -}}
{{- end -}}

{{/* Logins that may connect through the pooler: the isolation logins, space separated (pooler-start.sh reads
their passwords). Usage: {{ include "nova-postgres.pooler.logins" . }} */}}
{{- define "nova-postgres.pooler.logins" -}}
{{- keys .Values.isolation.logins | sortAlpha | join " " -}}
{{- end -}}

{{/* Logins of the pooler's auth_file, as a JSON list: the isolation logins, plus metrics.login (the exporter's
stats_users login on the admin console) when metrics are on. Usage: {{ include "nova-postgres.pooler.authLogins" . | fromJsonArray }} */}}
{{- define "nova-postgres.pooler.authLogins" -}}
{{- $logins := keys .Values.isolation.logins | sortAlpha -}}
{{- if and (eq (include "nova-common.metrics.enabled" .) "true") (not (has .Values.metrics.login $logins)) -}}
{{- $logins = append $logins .Values.metrics.login -}}
{{- end -}}
{{- toJson $logins -}}
{{- end -}}

{{/* Server connections all pooler pods of one role may open to PostgreSQL: per pod, for each database the
smaller of max_db_connections (when set) and (default_pool_size + reserve_pool_size) x its logins; times the
pods. Usage: {{ include "nova-postgres.pooler.serverConnections" . }} */}}
{{- define "nova-postgres.pooler.serverConnections" -}}
{{- $p := .Values.pooler -}}
{{- $perPair := add (int $p.defaultPoolSize) (int $p.reservePoolSize) -}}
{{- $perPod := 0 -}}
{{- range $db, $_ := .Values.isolation.databases -}}
{{- $logins := 0 -}}
{{- range $login, $cfg := $.Values.isolation.logins }}{{ if eq $cfg.database $db }}{{ $logins = add1 $logins }}{{ end }}{{ end -}}
{{- $n := mul $perPair $logins -}}
{{- if and (gt (int $p.maxDbConnections) 0) (gt $n (int $p.maxDbConnections)) }}{{ $n = int $p.maxDbConnections }}{{ end -}}
{{- $perPod = add $perPod $n -}}
{{- end -}}
{{- mul $perPod (int $p.replicas) -}}
{{- end -}}

{{/* Render-time capacity check of the pooler: the server connections of every pooler role fit max_connections
minus superuser_reserved_connections and postgresql.reservedConnections; fails with the numbers and the keys.
Usage: {{ include "nova-postgres.pooler.validate" . }} */}}
{{- define "nova-postgres.pooler.validate" -}}
{{- if .Values.pooler.enabled -}}
{{- $p := .Values.pooler -}}
{{- $params := .Values.postgresql.parameters -}}
{{- $max := int (dig "max_connections" 100 $params) -}}
{{- $superuser := int (dig "superuser_reserved_connections" 3 $params) -}}
{{- $roles := include "nova-postgres.pooler.roles" . | fromJsonArray -}}
{{- $perRole := int (include "nova-postgres.pooler.serverConnections" .) -}}
{{- $total := mul $perRole (len $roles) -}}
{{- $budget := sub (sub $max $superuser) (int .Values.postgresql.reservedConnections) -}}
{{- if gt $total $budget -}}
{{- fail (printf "pooler: the poolers may open %d server connections (%d role(s) x pooler.replicas=%d x (pooler.defaultPoolSize=%d + pooler.reservePoolSize=%d) per login, capped by pooler.maxDbConnections=%d per database), more than postgresql.parameters.max_connections=%d - superuser_reserved_connections=%d - postgresql.reservedConnections=%d = %d: lower the pool sizes or pooler.replicas, set pooler.maxDbConnections, or raise max_connections" $total (len $roles) (int $p.replicas) (int $p.defaultPoolSize) (int $p.reservePoolSize) (int $p.maxDbConnections) $max $superuser (int .Values.postgresql.reservedConnections) $budget) -}}
{{- end -}}
{{- end -}}
{{- end -}}
