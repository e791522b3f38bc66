{{/* true (non-empty) when pgBackRest runs: backup.enabled with a named repository, or a restore from one.
Usage: {{ if include "nova-postgres.backup.active" . }} */}}
{{- define "nova-postgres.backup.active" -}}
{{- if and (or .Values.backup.enabled .Values.restore.fromBackup) .Values.backup.repository.type -}}true{{- end -}}
{{- end -}}

{{/* true when WAL archiving and the backup CronJobs are on. Usage: {{ if include "nova-postgres.backup.archiving" . }} */}}
{{- define "nova-postgres.backup.archiving" -}}
{{- if and .Values.backup.enabled .Values.backup.repository.type -}}true{{- end -}}
{{- end -}}

{{/* pgBackRest stanza: backup.stanza, else the Patroni scope. Usage: {{ include "nova-postgres.backup.stanza" . }} */}}
{{- define "nova-postgres.backup.stanza" -}}
{{- default (include "nova-postgres.scope" .) .Values.backup.stanza -}}
{{- end -}}

{{/* Stanza a restore reads: restore.stanza, else the backup stanza. Usage: {{ include "nova-postgres.restore.stanza" . }} */}}
{{- define "nova-postgres.restore.stanza" -}}
{{- default (include "nova-postgres.backup.stanza" .) .Values.restore.stanza -}}
{{- end -}}

{{/* Name of the TLS Secret of the pgBackRest server and the backup Job. Usage: {{ include "nova-postgres.backup.tlsSecret" . }} */}}
{{- define "nova-postgres.backup.tlsSecret" -}}
{{- default (include "nova-postgres.name.suffixed" (dict "ctx" . "suffix" "backup-tls")) .Values.backup.server.tlsSecret -}}
{{- end -}}

{{/* Name of the PVC repository. Usage: {{ include "nova-postgres.backup.repoClaim" . }} */}}
{{- define "nova-postgres.backup.repoClaim" -}}
{{- default (include "nova-postgres.name.suffixed" (dict "ctx" . "suffix" "backup-repo")) .Values.backup.repository.pvc.claimName -}}
{{- end -}}

{{/* PostgreSQL data directory (Patroni's data_dir, pgBackRest's pg-path). Usage: {{ include "nova-postgres.dataDir" . }} */}}
{{- define "nova-postgres.dataDir" -}}
{{- printf "%s/pgroot/data" .Values.postgresql.dataMountPath -}}
{{- end -}}

{{/* The [global] repository options shared by files/pgbackrest.conf (pods) and files/pgbackrest-backup.conf (Job).
Usage: {{ include "nova-postgres.pgbackrest.global" . }} */}}
{{- define "nova-postgres.pgbackrest.global" -}}
{{- $b := .Values.backup -}}
{{- $r := $b.repository -}}
[global]
repo1-type={{ if eq $r.type "pvc" }}posix{{ else }}s3{{ end }}
repo1-path={{ $r.path }}
{{- if eq $r.type "s3" }}
repo1-s3-endpoint={{ $r.s3.endpoint }}
repo1-s3-bucket={{ $r.s3.bucket }}
repo1-s3-region={{ $r.s3.region }}
repo1-s3-uri-style={{ $r.s3.uriStyle }}
repo1-s3-key-type={{ $r.s3.keyType }}
repo1-storage-port={{ $r.s3.port }}
repo1-storage-verify-tls={{ if $r.s3.verifyTls }}y{{ else }}n{{ end }}
{{- if $r.s3.caSecret }}
repo1-storage-ca-file=/etc/pgbackrest/s3-ca/ca.crt
{{- end }}
{{- end }}
repo1-retention-full-type=count
repo1-retention-full={{ $b.retentionFull }}
repo1-retention-diff={{ $b.retentionDiff }}
compress-type={{ $b.compressType }}
process-max={{ $b.processMax }}
start-fast=y
log-level-console=info
log-level-file=off
lock-path=/tmp/pgbackrest
spool-path=/tmp/pgbackrest-spool
{{- range $k, $v := $b.extraOptions }}
{{ $k }}={{ $v }}
{{- end }}
{{- end -}}

{{/* env of every container that reaches the repository: the config path and the S3 key pair from its Secret.
Usage: {{ include "nova-postgres.backup.env" . | nindent 12 }} */}}
{{- define "nova-postgres.backup.env" -}}
- name: PGBACKREST_CONFIG_PATH
  value: /etc/pgbackrest
{{- $s3 := .Values.backup.repository.s3 }}
{{- if and (eq .Values.backup.repository.type "s3") (eq $s3.keyType "shared") }}
- name: PGBACKREST_REPO1_S3_KEY
  valueFrom: {secretKeyRef: {name: {{ $s3.credentialsSecret }}, key: {{ $s3.accessKeyKey }}}}
- name: PGBACKREST_REPO1_S3_KEY_SECRET
  valueFrom: {secretKeyRef: {name: {{ $s3.credentialsSecret }}, key: {{ $s3.secretKeyKey }}}}
{{- end }}
{{- end -}}

{{/* Volumes of the repository (PVC, S3 CA) for the pods and the Job. Usage: {{ include "nova-postgres.backup.repoVolumes" . | nindent 8 }} */}}
{{- define "nova-postgres.backup.repoVolumes" -}}
{{- $r := .Values.backup.repository -}}
{{- if eq $r.type "pvc" }}
- name: pgbackrest-repo
  persistentVolumeClaim:
    claimName: {{ include "nova-postgres.backup.repoClaim" . }}
{{- end }}
{{- if and (eq $r.type "s3") $r.s3.caSecret }}
- name: pgbackrest-s3-ca
  secret:
    secretName: {{ $r.s3.caSecret }}
    items: [{key: ca.crt, path: ca.crt}]
{{- end }}
{{- end -}}

{{/* Mounts of those volumes. Usage: {{ include "nova-postgres.backup.repoMounts" . | nindent 12 }} */}}
{{- define "nova-postgres.backup.repoMounts" -}}
{{- $r := .Values.backup.repository -}}
{{- if eq $r.type "pvc" }}
- name: pgbackrest-repo
  mountPath: {{ $r.path }}
{{- end }}
{{- if and (eq $r.type "s3") $r.s3.caSecret }}
- name: pgbackrest-s3-ca
  mountPath: /etc/pgbackrest/s3-ca
  readOnly: true
{{- end }}
{{- end -}}

{{/* Cross-field checks of backup.* and restore.*; included from nova-postgres.validate. Every message names the key as
the user sets it ($k: "postgres." under the umbrella, nova-common.valuesPrefix).
Usage: {{ include "nova-postgres.backup.validate" . }} */}}
{{- define "nova-postgres.backup.validate" -}}
{{- $b := .Values.backup -}}
{{- $r := $b.repository -}}
{{- $rs := .Values.restore -}}
{{- $k := include "nova-common.valuesPrefix" . -}}
{{- if and $b.enabled (not $r.type) $r.required -}}
{{- fail (printf "nova-postgres: %[1]sbackup.enabled is true but no backup repository is named: name yours in your site overlay, %[1]sbackup.repository.type s3 with %[1]sbackup.repository.s3.endpoint, .bucket, .region and .credentialsSecret, or type pvc (values/examples/production-site.yaml is one to copy, docs/disaster-recovery.md); or set %[1]sbackup.enabled=false to run without backups" $k) -}}
{{- end -}}
{{- if and $rs.fromBackup (not $r.type) -}}
{{- fail (printf "nova-postgres: %[1]srestore.fromBackup needs the repository to restore from: set %[1]sbackup.repository.type and its settings" $k) -}}
{{- end -}}
{{- if include "nova-postgres.backup.active" . -}}
{{- if or .Values.walArchive.enabled .Values.walArchive.createReplicaMethods -}}
{{- fail (printf "nova-postgres: %[1]sbackup.* (or %[1]srestore.fromBackup) and %[1]swalArchive.* are both set; backup.* replaces walArchive.*: set %[1]swalArchive.enabled=false and %[1]swalArchive.createReplicaMethods=[]" $k) -}}
{{- end -}}
{{- if contains "spilo" .Values.image.repository -}}
{{- fail (printf "nova-postgres: %[2]simage.repository %[1]s has no pgBackRest (Spilo ships WAL-G): with %[2]sbackup.enabled or %[2]srestore.fromBackup set %[2]simage to an image with Patroni and pgBackRest, e.g. percona/percona-distribution-postgresql (values/production.yaml), with %[2]spostgresql.binDir and the security contexts' uid (docs/disaster-recovery.md)" .Values.image.repository $k) -}}
{{- end -}}
{{- if and (include "nova-postgres.backup.archiving" .) (not $b.server.tlsSecret) (dig "gitops" false (.Values.global | default dict)) -}}
{{- fail (printf "nova-postgres: global.gitops is true and %[1]sbackup.enabled is on, but %[1]sbackup.server.tlsSecret is empty: without lookup every render would make a new pgBackRest CA and certificates (a rotation on each sync); create a Secret with keys ca.crt, server.crt, server.key (for *.<fullname>-headless.<namespace>.svc.<domain>), client.crt and client.key (CN pgbackrest-backup), all from one CA, and name it in %[1]sbackup.server.tlsSecret (docs/gitops.md)" $k) -}}
{{- end -}}
{{- if eq $r.type "s3" -}}
{{- if not $r.s3.endpoint -}}{{- fail (printf "nova-postgres: %[1]sbackup.repository.type is s3: set %[1]sbackup.repository.s3.endpoint (a host name, no scheme)" $k) -}}{{- end -}}
{{- if contains "://" $r.s3.endpoint -}}{{- fail (printf "nova-postgres: %sbackup.repository.s3.endpoint %q must be a host name without scheme (TLS is always used)" $k $r.s3.endpoint) -}}{{- end -}}
{{- if not $r.s3.bucket -}}{{- fail (printf "nova-postgres: %[1]sbackup.repository.type is s3: set %[1]sbackup.repository.s3.bucket (an existing bucket)" $k) -}}{{- end -}}
{{- if and (eq $r.s3.keyType "shared") (not $r.s3.credentialsSecret) -}}
{{- fail (printf "nova-postgres: %[1]sbackup.repository.s3.keyType is shared: set %[1]sbackup.repository.s3.credentialsSecret (a Secret with keys %[1]sbackup.repository.s3.accessKeyKey and secretKeyKey), or keyType web-id for a workload identity" $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $rs.targetTime $rs.targetName -}}
{{- fail (printf "nova-postgres: set one of %[1]srestore.targetTime and %[1]srestore.targetName, not both" $k) -}}
{{- end -}}
{{- if and $rs.targetTime (not (regexMatch "^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$" $rs.targetTime)) -}}
{{- fail (printf "nova-postgres: %srestore.targetTime %q must be an ISO 8601 time with a zone, e.g. \"2026-12-01 12:00:00+00\"" $k $rs.targetTime) -}}
{{- end -}}
{{- if and (or $rs.targetTime $rs.targetName $rs.set $rs.stanza) (not $rs.fromBackup) -}}
{{- fail (printf "nova-postgres: %[1]srestore.targetTime/targetName/set/stanza are read only with %[1]srestore.fromBackup=true" $k) -}}
{{- end -}}
{{- end -}}

{{/* Patroni custom bootstrap command of restore.fromBackup (files/pgbackrest-restore.py with the restore.* values).
Usage: {{ include "nova-postgres.restore.command" . }} */}}
{{- define "nova-postgres.restore.command" -}}
{{- $r := .Values.restore -}}
{{- $args := list "/usr/bin/env" "python3" "/etc/pgbackrest/pgbackrest-restore.py" (printf "--stanza=%s" (include "nova-postgres.restore.stanza" .)) (printf "--data-dir=%s" (include "nova-postgres.dataDir" .)) -}}
{{- with $r.set }}{{ $args = append $args (printf "--set=%s" .) }}{{ end -}}
{{- with $r.targetTime }}{{ $args = append $args (printf "--target-time=%s" . | squote) }}{{ end -}}
{{- with $r.targetName }}{{ $args = append $args (printf "--target-name=%s" . | squote) }}{{ end -}}
{{- join " " $args -}}
{{- end -}}
