{{/* Patroni's dynamic configuration (the part Patroni keeps in the DCS), as YAML: ttl, loop_wait, retry_timeout,
maximum_lag_on_failover, the synchronous_* settings, failsafe_mode, postgresql.{use_pg_rewind, use_slots, parameters} (from
postgresql.parameters and walArchive.*), then patroni.extraDynamicConfig merged over it. One definition, two
readers: files/patroni.yml (bootstrap.dcs, written to etcd once, when the cluster is initialised) and the
config-apply Job (desired.json, PATCHed into the running cluster on every upgrade that changes it). Whole-number
parameters print without an exponent (YAML numbers reach templates as float64).
Usage: {{ include "nova-postgres.patroni.dynamicConfig" . | fromYaml }} */}}
{{- define "nova-postgres.patroni.dynamicConfig" -}}
{{- $p := .Values.patroni -}}
{{- $parameters := dict -}}
{{- range $k, $v := .Values.postgresql.parameters -}}
{{- if and (kindIs "float64" $v) (eq $v (floor $v)) -}}
{{- $_ := set $parameters $k (printf "%d" (int64 $v)) -}}
{{- else -}}
{{- $_ := set $parameters $k (toString $v) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $parameters "wal_log_hints" "on" -}}
{{- if .Values.walArchive.enabled -}}
{{- $_ := set $parameters "archive_mode" "on" -}}
{{- $_ := set $parameters "archive_command" (required "walArchive.archiveCommand is required when walArchive.enabled is true" .Values.walArchive.archiveCommand) -}}
{{- $_ := set $parameters "archive_timeout" (toString .Values.walArchive.archiveTimeout) -}}
{{- end -}}
{{- $dcs := dict
  "ttl" (int $p.ttl)
  "loop_wait" (int $p.loopWait)
  "retry_timeout" (int $p.retryTimeout)
  "maximum_lag_on_failover" (int64 $p.maximumLagOnFailover)
  "synchronous_mode" $p.synchronousMode
  "synchronous_mode_strict" $p.synchronousModeStrict
  "synchronous_node_count" (int $p.synchronousNodeCount)
  "failsafe_mode" $p.failsafeMode
  "postgresql" (dict "use_pg_rewind" $p.usePgRewind "use_slots" true "parameters" $parameters) -}}
{{- include "nova-common.deepMerge" (dict "dst" $dcs "src" ($p.extraDynamicConfig | default dict)) -}}
{{- toYaml $dcs -}}
{{- end -}}

{{/* Checksum of the pod-local Patroni configuration: patroni.yml without bootstrap.dcs (which Patroni reads only
when it initialises a new cluster; the config-apply Job applies it to a running one), the role-label callback
and the preStop script. A change of a dynamic setting alone leaves the pod template unchanged.
Usage: {{ include "nova-postgres.patroni.localChecksum" . }} */}}
{{- define "nova-postgres.patroni.localChecksum" -}}
{{- $cfg := tpl (.Files.Get "files/patroni.yml") . | fromYaml -}}
{{- $_ := unset $cfg.bootstrap "dcs" -}}
{{- toYaml $cfg | cat (.Files.Get "files/role_label.py") (.Files.Get "files/pre-stop.sh") | sha256sum -}}
{{- end -}}

{{/* Name of the config-apply ConfigMap. Usage: {{ include "nova-postgres.configApply.configName" . }} */}}
{{- define "nova-postgres.configApply.configName" -}}
{{- include "nova-postgres.name.suffixed" (dict "ctx" . "suffix" "config-apply") -}}
{{- end -}}

{{/* data of the config-apply ConfigMap: desired.json (the dynamic configuration) and config_apply.py.
Usage: {{ include "nova-postgres.configApply.data" . }} */}}
{{- define "nova-postgres.configApply.data" -}}
desired.json: |
  {{- include "nova-postgres.patroni.dynamicConfig" . | fromYaml | toPrettyJson | nindent 2 }}
config_apply.py: |
  {{- .Files.Get "files/config_apply.py" | nindent 2 }}
{{- end -}}

{{/* REST URLs of every PostgreSQL pod (the headless Service's per-pod DNS names, published before readiness),
comma-separated. Usage: {{ include "nova-postgres.configApply.members" . }} */}}
{{- define "nova-postgres.configApply.members" -}}
{{- $fullname := include "nova-postgres.fullname" . -}}
{{- $headless := include "nova-postgres.name.suffixed" (dict "ctx" . "suffix" "headless") -}}
{{- $ns := include "nova-postgres.namespace" . -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.replicas) -}}
{{- $urls = append $urls (printf "http://%s-%d.%s.%s.svc.%s:%d" $fullname $i $headless $ns $.Values.clusterDomain (int $.Values.patroni.restApiPort)) -}}
{{- end -}}
{{- join "," $urls -}}
{{- end -}}

{{/* Pod template of the config-apply Job (immutable, so it goes into the Job's name with the ConfigMap data; the
labels are the stable selector labels only). Usage: {{ include "nova-postgres.configApply.podTemplate" . }} */}}
{{- define "nova-postgres.configApply.podTemplate" -}}
{{- $c := .Values.patroni.configApply -}}
{{- $selector := include "nova-postgres.selectorLabels" (dict "ctx" $ "component" "config-apply") -}}
metadata:
  labels:
    {{- $selector | nindent 4 }}
    app.kubernetes.io/part-of: nova
  {{- with $c.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  restartPolicy: Never
  # The Job speaks to Patroni's REST API with the password from the Secret; it needs no Kubernetes API token.
  automountServiceAccountToken: false
  {{- with include "nova-postgres.imagePullSecrets" . }}
  {{- . | nindent 2 }}
  {{- end }}
  {{- with $c.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  {{- with $c.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: config-apply
      # The Patroni image: python3 with Patroni's own modules (the parameter validator) and the postgres binary
      # (`postgres --describe-config` says which parameters need a restart); see files/config_apply.py.
      image: {{ include "nova-postgres.image" (dict "ctx" $ "image" .Values.image "key" "image") }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: [python3, /etc/nova-config-apply/config_apply.py, /etc/nova-config-apply/desired.json]
      env:
        - name: NOVA_PATRONI_MEMBERS
          value: {{ include "nova-postgres.configApply.members" . | quote }}
        - name: NOVA_NAMESPACE
          value: {{ include "nova-postgres.namespace" . | quote }}
        - name: NOVA_SCOPE
          value: {{ include "nova-postgres.scope" . | quote }}
        - name: NOVA_PG_BIN_DIR
          value: {{ .Values.postgresql.binDir | quote }}
        - name: NOVA_RESTART_PENDING
          value: {{ $c.restartPending | quote }}
        - name: NOVA_PRUNE_PARAMETERS
          value: {{ $c.pruneParameters | quote }}
        - name: NOVA_WAIT_SECONDS
          value: {{ $c.waitSeconds | quote }}
        - name: NOVA_RESTART_TIMEOUT
          value: {{ $c.restartTimeoutSeconds | quote }}
        - name: PATRONI_RESTAPI_USERNAME
          value: {{ .Values.auth.restUsername | quote }}
        - name: PATRONI_RESTAPI_PASSWORD
          valueFrom: {secretKeyRef: {name: {{ include "nova-postgres.secretName" . }}, key: rest-password}}
        - name: HOME
          value: /tmp
      resources:
        {{- include "nova-common.resources" (dict "resources" $c.resources "key" "patroni.configApply.resources") | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: config-apply
          mountPath: /etc/nova-config-apply
          readOnly: true
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: config-apply
      configMap:
        name: {{ include "nova-postgres.configApply.configName" . }}
    - name: tmp
      emptyDir: {sizeLimit: 16Mi}
{{- end -}}

{{/* Name of the config-apply Job: <fullname>-config-apply-<10 hex of sha256(pod template + ConfigMap data)>: a
changed dynamic setting, script or option is a new Job; an unchanged upgrade keeps the finished one.
Usage: {{ include "nova-postgres.configApply.jobName" . }} */}}
{{- define "nova-postgres.configApply.jobName" -}}
{{- $hash := print (include "nova-postgres.configApply.podTemplate" .) (include "nova-postgres.configApply.data" .) | sha256sum | trunc 10 -}}
{{- include "nova-common.name.suffixed" (dict "name" (include "nova-postgres.configApply.configName" .) "suffix" $hash) -}}
{{- end -}}
