{{/* Name of the bootstrap ConfigMap. Usage: {{ include "nova-postgres.bootstrap.configName" . }} */}}
{{- define "nova-postgres.bootstrap.configName" -}}
{{- include "nova-postgres.name.suffixed" (dict "ctx" . "suffix" "bootstrap") -}}
{{- end -}}

{{/* data of the bootstrap ConfigMap: plan.json (from isolation.* and metrics.login) and bootstrap.py.
Usage: {{ include "nova-postgres.bootstrap.data" . }} */}}
{{- define "nova-postgres.bootstrap.data" -}}
{{- $logins := dict }}
{{- range $login, $cfg := .Values.isolation.logins }}
{{- $spec := dict "database" $cfg.database "schema" $cfg.schema "passwordEnv" (include "nova-postgres.loginEnv" $login) }}
{{- if hasKey $cfg "connectionLimit" }}
{{- $_ := set $spec "connectionLimit" (int $cfg.connectionLimit) }}
{{- end }}
{{- $_ := set $logins $login $spec }}
{{- end }}
{{- if eq (include "nova-common.metrics.enabled" .) "true" }}
{{- $_ := set $logins .Values.metrics.login (dict "database" "postgres" "memberOf" (list "pg_monitor") "passwordEnv" (include "nova-postgres.loginEnv" .Values.metrics.login) "connectionLimit" 5) }}
{{- end }}
{{- $databases := dict }}
{{- range $db, $cfg := .Values.isolation.databases }}
{{- $_ := set $databases $db (dict "schemas" ($cfg.schemas | default list)) }}
{{- end }}
plan.json: |
  {{- dict "databases" $databases "logins" $logins | toPrettyJson | nindent 2 }}
bootstrap.py: |
  {{- .Files.Get "files/bootstrap.py" | nindent 2 }}
{{- end -}}

{{/* Pod template of the bootstrap Job. Job pod templates are immutable, so everything in here (and the
ConfigMap data) goes into the Job's name through nova-postgres.bootstrap.jobName; the labels are the stable
selector labels only, so a chart version bump alone does not start a new Job.
Usage: {{ include "nova-postgres.bootstrap.podTemplate" . }} */}}
{{- define "nova-postgres.bootstrap.podTemplate" -}}
{{- $fullname := include "nova-postgres.fullname" . }}
{{- $secret := include "nova-postgres.secretName" . }}
{{- $ns := include "nova-postgres.namespace" . -}}
{{- $b := .Values.bootstrap -}}
{{- $selector := include "nova-postgres.selectorLabels" (dict "ctx" $ "component" "bootstrap") -}}
metadata:
  labels:
    {{- include "nova-common.podLabels" (dict "labels" (printf "%s\napp.kubernetes.io/part-of: nova" $selector) "selector" $selector "podLabels" $b.podLabels "key" "bootstrap.podLabels") | nindent 4 }}
  {{- with $b.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  # A failed attempt leaves its pod (and log) behind; the Job starts a new one, up to bootstrap.backoffLimit.
  restartPolicy: Never
  automountServiceAccountToken: false
  {{- with include "nova-postgres.imagePullSecrets" . }}
  {{- . | nindent 2 }}
  {{- end }}
  {{- with $b.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  {{- with $b.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $b.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $b.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with include "nova-common.extras.field" (dict "ctx" $ "name" "initContainers" "items" $b.extraInitContainers "key" "bootstrap.extraInitContainers" "reserved" (list "bootstrap")) }}{{ . | nindent 2 }}{{ end }}
  containers:
    - name: bootstrap
      image: {{ include "nova-postgres.image" (dict "ctx" $ "image" .Values.image "key" "image") }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: [python3, /etc/nova-bootstrap/bootstrap.py, /etc/nova-bootstrap/plan.json]
      env:
        - name: PGHOST
          value: {{ printf "%s-primary.%s.svc.%s" $fullname $ns .Values.clusterDomain | quote }}
        - name: PGPORT
          value: {{ .Values.postgresql.port | quote }}
        - name: PGUSER
          value: {{ .Values.auth.superuserUsername | quote }}
        - name: PGPASSWORD
          valueFrom: {secretKeyRef: {name: {{ $secret }}, key: superuser-password}}
        - name: NOVA_BOOTSTRAP_WAIT
          value: {{ .Values.bootstrap.waitSeconds | quote }}
        {{- if include "nova-common.tls.enabled" . }}
        # TLS (templates/tls/_tls.tpl): libpq verifies the -primary Service name against the CA.
        - name: PGSSLMODE
          value: verify-full
        - name: PGSSLROOTCERT
          value: {{ include "nova-postgres.tls.dir" . }}/ca.crt
        {{- end }}
        - name: HOME
          value: /tmp
        {{- range $login, $_ := .Values.isolation.logins }}
        - name: {{ include "nova-postgres.loginEnv" $login }}
          valueFrom: {secretKeyRef: {name: {{ $secret }}, key: {{ printf "%s-password" $login }}}}
        {{- end }}
        {{- if eq (include "nova-common.metrics.enabled" .) "true" }}
        - name: {{ include "nova-postgres.loginEnv" .Values.metrics.login }}
          valueFrom: {secretKeyRef: {name: {{ $secret }}, key: {{ printf "%s-password" .Values.metrics.login }}}}
        {{- end }}
        {{- with include "nova-common.extras.items" (dict "ctx" $ "items" $b.extraEnv) }}{{ . | nindent 8 }}{{ end }}
      {{- with include "nova-common.extras.field" (dict "ctx" $ "name" "envFrom" "items" $b.extraEnvFrom) }}{{ . | nindent 6 }}{{ end }}
      resources:
        {{- include "nova-common.resources" (dict "resources" .Values.bootstrap.resources "key" "bootstrap.resources") | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: bootstrap
          mountPath: /etc/nova-bootstrap
          readOnly: true
        - name: tmp
          mountPath: /tmp
        {{- if include "nova-common.tls.enabled" . }}
        - name: tls-ca
          mountPath: {{ include "nova-postgres.tls.dir" . }}
          readOnly: true
        {{- end }}
        {{- with include "nova-common.extras.items" (dict "ctx" $ "items" $b.extraVolumeMounts) }}{{ . | nindent 8 }}{{ end }}
    {{- with include "nova-common.extras.items" (dict "ctx" $ "items" $b.sidecars "key" "bootstrap.sidecars" "reserved" (list "bootstrap") "reservedItems" $b.extraInitContainers) }}{{ . | nindent 4 }}{{ end }}
  volumes:
    - name: bootstrap
      configMap:
        name: {{ include "nova-postgres.bootstrap.configName" . }}
    - name: tmp
      emptyDir: {sizeLimit: 64Mi}
    {{- if include "nova-common.tls.enabled" . }}
    # The CA only: the Job never needs the server's key.
    - name: tls-ca
      secret:
        secretName: {{ include "nova-postgres.tls.secretName" . }}
        defaultMode: 0444
        items:
          - {key: ca.crt, path: ca.crt}
    {{- end }}
    {{- with include "nova-common.extras.items" (dict "ctx" $ "items" $b.extraVolumes "key" "bootstrap.extraVolumes" "reserved" (list "bootstrap" "tmp" "tls-ca")) }}{{ . | nindent 4 }}{{ end }}
{{- end -}}

{{/* Name of the bootstrap Job: <fullname>-bootstrap-<10 hex of sha256(pod template + ConfigMap data)>, so any
change of the script, the plan (isolation values), the Secret name, the image or the env makes a new Job and an
unchanged upgrade keeps the finished one. Usage: {{ include "nova-postgres.bootstrap.jobName" . }} */}}
{{- define "nova-postgres.bootstrap.jobName" -}}
{{- $hash := print (include "nova-postgres.bootstrap.podTemplate" .) (include "nova-postgres.bootstrap.data" .) | sha256sum | trunc 10 -}}
{{- include "nova-common.name.suffixed" (dict "name" (include "nova-postgres.bootstrap.configName" .) "suffix" $hash) -}}
{{- end -}}
