{{/*
Backups (CronJob <fullname>-backup) and restore (init containers of the Redis pods). docs/redis.md "Backups and restore".
*/}}

{{/* Name of the backup CronJob, its ConfigMap and NetworkPolicy. Usage: {{ include "nova-redis.backup.fullname" . }} */}}
{{- define "nova-redis.backup.fullname" -}}
{{- include "nova-redis.name.suffixed" (dict "ctx" . "suffix" "backup") -}}
{{- end -}}

{{/* "true" when the backup scripts are needed (backups on, or a restore asked for). Usage: {{ if include "nova-redis.backup.scriptsNeeded" . }} */}}
{{- define "nova-redis.backup.scriptsNeeded" -}}
{{- if or .Values.backup.enabled .Values.restore.fromSnapshot }}true{{ end -}}
{{- end -}}

{{/* The S3 endpoint's port: the URL's, else 443. Usage: {{ include "nova-redis.backup.s3Port" . }} */}}
{{- define "nova-redis.backup.s3Port" -}}
{{- $host := (urlParse .Values.backup.repository.s3.endpoint).host -}}
{{- if regexMatch ":[0-9]+$" $host -}}
{{- regexReplaceAll "^.*:([0-9]+)$" $host "${1}" -}}
{{- else -}}
443
{{- end -}}
{{- end -}}

{{/*
Cross-field checks of backup.* and restore.*, included once (from backup/configmap.yaml). Every message names the key as
the user sets it ($k: "redis." under the umbrella, nova-common.valuesPrefix).
Usage: {{ include "nova-redis.backup.validate" . }}
*/}}
{{- define "nova-redis.backup.validate" -}}
{{- $repo := .Values.backup.repository -}}
{{- $k := include "nova-common.valuesPrefix" . -}}
{{- $what := ternary (printf "%sbackup.enabled is true" $k) (printf "%srestore.fromSnapshot is %q" $k .Values.restore.fromSnapshot) .Values.backup.enabled -}}
{{- if eq $repo.type "pv" -}}
{{- if not $repo.pv.existingClaim -}}
{{- fail (printf "nova-redis: %[1]s but %[2]sbackup.repository.pv.existingClaim is empty: name the PersistentVolumeClaim of the repository, or use %[2]sbackup.repository.type=s3 with %[2]sbackup.repository.s3.endpoint and .bucket (or set %[2]sbackup.enabled=false to run without backups)" $what $k) -}}
{{- end -}}
{{- else -}}
{{- if or (not $repo.s3.endpoint) (not $repo.s3.bucket) -}}
{{- fail (printf "nova-redis: %[1]s but the S3 repository is not named: name yours in your site overlay, %[2]sbackup.repository.s3.endpoint (https://...), .bucket and, for access keys, .existingSecret (values/examples/production-site.yaml is one to copy, docs/redis.md \"Backups and restore\"); or set %[2]sbackup.enabled=false to run without backups" $what $k) -}}
{{- end -}}
{{- if not (hasPrefix "https://" $repo.s3.endpoint) -}}
{{- fail (printf "nova-redis: %sbackup.repository.s3.endpoint %q must be an https:// URL (snapshots hold every key: they travel over TLS only)" $k $repo.s3.endpoint) -}}
{{- end -}}
{{- if not (regexMatch "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$" $repo.s3.bucket) -}}
{{- fail (printf "nova-redis: %sbackup.repository.s3.bucket %q is not a valid bucket name (3-63 lower-case letters, digits, '.', '-')" $k $repo.s3.bucket) -}}
{{- end -}}
{{- if regexMatch "(^/|/$|\\.\\.|[^A-Za-z0-9._/-])" $repo.s3.path -}}
{{- fail (printf "nova-redis: %sbackup.repository.s3.path %q: use letters, digits, '.', '_', '-' and inner '/' only" $k $repo.s3.path) -}}
{{- end -}}
{{- end -}}
{{- with .Values.restore.fromSnapshot -}}
{{- if and (ne . "latest") (not (regexMatch "^[A-Za-z0-9][A-Za-z0-9._-]*\\.rdb$" .)) -}}
{{- fail (printf "nova-redis: %srestore.fromSnapshot %q must be a snapshot file name from the repository (<prefix>-<UTC time>.rdb, as the backup Job logs it) or latest" $k .) -}}
{{- end -}}
{{- end -}}
{{- with .Values.restore.sourcePrefix -}}
{{- if not (regexMatch "^[A-Za-z0-9][A-Za-z0-9._-]*$" .) -}}
{{- fail (printf "nova-redis: %srestore.sourcePrefix %q may only contain letters, digits, '.', '_' and '-'" $k .) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Environment that names the repository for lib.sh (and rclone's remote "repo" for type s3).
Usage: {{ include "nova-redis.backup.repositoryEnv" (dict "ctx" $ "prefix" $name) | nindent 12 }}
*/}}
{{- define "nova-redis.backup.repositoryEnv" -}}
{{- $ctx := .ctx -}}
{{- $repo := $ctx.Values.backup.repository -}}
- name: BACKUP_PREFIX
  value: {{ .prefix | quote }}
- name: BACKUP_REPOSITORY_TYPE
  value: {{ $repo.type | quote }}
{{- if eq $repo.type "pv" }}
- name: BACKUP_PV_DIR
  value: /repository
{{- else }}
{{- $s3 := $repo.s3 }}
- name: BACKUP_S3_TARGET
  value: {{ printf "repo:%s/%s" $s3.bucket $s3.path | trimSuffix "/" | quote }}
- name: HOME
  value: /tmp
- name: RCLONE_CONFIG
  value: /tmp/rclone.conf
- name: RCLONE_CACHE_DIR
  value: /tmp/rclone-cache
- name: RCLONE_CONFIG_REPO_TYPE
  value: s3
- name: RCLONE_CONFIG_REPO_PROVIDER
  value: {{ $s3.provider | quote }}
- name: RCLONE_CONFIG_REPO_ENDPOINT
  value: {{ $s3.endpoint | quote }}
- name: RCLONE_CONFIG_REPO_REGION
  value: {{ $s3.region | quote }}
- name: RCLONE_CONFIG_REPO_FORCE_PATH_STYLE
  value: {{ $s3.forcePathStyle | quote }}
# The bucket must exist; the Job never tries to create it (least privilege: list, get, put, delete).
- name: RCLONE_CONFIG_REPO_NO_CHECK_BUCKET
  value: "true"
{{- if $s3.existingSecret }}
- name: RCLONE_CONFIG_REPO_ENV_AUTH
  value: "false"
- name: RCLONE_CONFIG_REPO_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "nova-common.tplValue" (dict "value" $s3.existingSecret "ctx" $ctx) }}
      key: {{ $s3.accessKeyIdKey }}
- name: RCLONE_CONFIG_REPO_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "nova-common.tplValue" (dict "value" $s3.existingSecret "ctx" $ctx) }}
      key: {{ $s3.secretAccessKeyKey }}
{{- else }}
# No Secret: workload identity (the AWS SDK credential chain of the pod).
- name: RCLONE_CONFIG_REPO_ENV_AUTH
  value: "true"
{{- end }}
{{- if $s3.caSecret.name }}
- name: RCLONE_CA_CERT
  value: /etc/nova-redis-backup/ca/{{ $s3.caSecret.key }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Volumes that hold the repository (type pv: the claim; type s3: the CA bundle, if any). .readOnly for restores.
Usage: {{ include "nova-redis.backup.repositoryVolumes" (dict "ctx" $ "readOnly" true) | nindent 8 }} */}}
{{- define "nova-redis.backup.repositoryVolumes" -}}
{{- $repo := .ctx.Values.backup.repository -}}
{{- if eq $repo.type "pv" }}
- name: backup-repository
  persistentVolumeClaim:
    claimName: {{ $repo.pv.existingClaim }}
    readOnly: {{ .readOnly }}
{{- else if $repo.s3.caSecret.name }}
- name: backup-ca
  secret:
    secretName: {{ include "nova-common.tplValue" (dict "value" $repo.s3.caSecret.name "ctx" .ctx) }}
{{- end }}
{{- end -}}

{{/* Mounts of the repository volumes in a container that reads or writes the repository.
Usage: {{ include "nova-redis.backup.repositoryMounts" (dict "ctx" $ "readOnly" false) | nindent 12 }} */}}
{{- define "nova-redis.backup.repositoryMounts" -}}
{{- $repo := .ctx.Values.backup.repository -}}
{{- if eq $repo.type "pv" }}
- name: backup-repository
  mountPath: /repository
  readOnly: {{ .readOnly }}
{{- else if $repo.s3.caSecret.name }}
- name: backup-ca
  mountPath: /etc/nova-redis-backup/ca
  readOnly: true
{{- end }}
{{- end -}}

{{/*
Restore init containers of the Redis pods (restore.fromSnapshot): `restore-fetch` (rclone image, S3 only)
downloads the snapshot, `restore` (Redis image) checks it and lays it out in /data. Both do nothing when the
data directory already has data. Nothing when no restore is asked for.
Usage: {{ include "nova-redis.restore.initContainers" . | nindent 8 }}
*/}}
{{- define "nova-redis.restore.initContainers" -}}
{{- if .Values.restore.fromSnapshot }}
{{- $env := include "nova-redis.backup.repositoryEnv" (dict "ctx" . "prefix" (default (include "nova-redis.fullname" .) .Values.restore.sourcePrefix)) }}
{{- $restoreEnv := printf "- name: RESTORE_SNAPSHOT\n  value: %s\n- name: NOVA_REDIS_DATA_DIR\n  value: /data" (.Values.restore.fromSnapshot | quote) }}
{{- $mounts := "- name: backup-scripts\n  mountPath: /opt/nova-redis-backup\n  readOnly: true\n- name: data\n  mountPath: /data\n- name: tmp\n  mountPath: /tmp" }}
{{- if eq .Values.backup.repository.type "s3" }}
- name: restore-fetch
  image: {{ include "nova-redis.image" (dict "ctx" . "image" .Values.backup.s3Image "key" "backup.s3Image") }}
  imagePullPolicy: {{ .Values.backup.s3Image.pullPolicy }}
  command: ["/bin/sh", "/opt/nova-redis-backup/restore.sh", "fetch"]
  env:
    {{- $restoreEnv | nindent 4 }}
    {{- $env | nindent 4 }}
  resources:
    {{- include "nova-common.resources" (dict "resources" .Values.backup.resources "key" "backup.resources") | nindent 4 }}
  securityContext:
    {{- toYaml .Values.containerSecurityContext | nindent 4 }}
  volumeMounts:
    {{- $mounts | nindent 4 }}
    {{- include "nova-redis.backup.repositoryMounts" (dict "ctx" . "readOnly" true) | nindent 4 }}
{{- end }}
- name: restore
  image: {{ include "nova-redis.image" (dict "ctx" . "image" .Values.image "key" "image") }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["/bin/sh", "/opt/nova-redis-backup/restore.sh", "install"]
  env:
    {{- $restoreEnv | nindent 4 }}
    {{- $env | nindent 4 }}
  resources:
    {{- include "nova-common.resources" (dict "resources" .Values.backup.resources "key" "backup.resources") | nindent 4 }}
  securityContext:
    {{- toYaml .Values.containerSecurityContext | nindent 4 }}
  volumeMounts:
    {{- $mounts | nindent 4 }}
    {{- if eq .Values.backup.repository.type "pv" }}
    {{- include "nova-redis.backup.repositoryMounts" (dict "ctx" . "readOnly" true) | nindent 4 }}
    {{- end }}
{{- end }}
{{- end -}}

{{/* Volumes the restore init containers need (scripts, repository). Usage: {{ include "nova-redis.restore.volumes" . | nindent 8 }} */}}
{{- define "nova-redis.restore.volumes" -}}
{{- if .Values.restore.fromSnapshot }}
- name: backup-scripts
  configMap:
    name: {{ include "nova-redis.backup.fullname" . }}
{{- include "nova-redis.backup.repositoryVolumes" (dict "ctx" . "readOnly" true) }}
{{- end }}
{{- end -}}
