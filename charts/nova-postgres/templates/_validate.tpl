{{/* Cross-field validation of values that values.schema.json cannot express (bounds and enums are schema checks).
Included once, from postgres/statefulset.yaml. Usage: {{ include "nova-postgres.validate" . }} */}}
{{- define "nova-postgres.validate" -}}
{{- $p := .Values.patroni -}}
{{- if gt (add (int $p.loopWait) (mul 2 (int $p.retryTimeout))) (int $p.ttl) -}}
{{- fail (printf "nova-postgres: Patroni needs patroni.loopWait + 2 x patroni.retryTimeout <= patroni.ttl (%d + 2 x %d > %d); lower loopWait/retryTimeout or raise ttl" (int $p.loopWait) (int $p.retryTimeout) (int $p.ttl)) -}}
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
{{- include "nova-postgres.backup.validate" . -}}
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

