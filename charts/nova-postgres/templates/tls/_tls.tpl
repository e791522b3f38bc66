{{/*
TLS of nova-postgres (docs/tls.md): where the certificate is mounted, the names it must carry, the libpq options
Patroni's own connections use. The switch itself is nova-common.tls.enabled / .required (tls.* or global.tls.*).
*/}}

{{/* Mount path of the TLS Secret in the postgres (and exporter) container. Usage: {{ include "nova-postgres.tls.dir" . }} */}}
{{- define "nova-postgres.tls.dir" -}}
/etc/nova-tls
{{- end -}}

{{/* Name of the Secret with tls.crt, tls.key, ca.crt. Usage: {{ include "nova-postgres.tls.secretName" . }} */}}
{{- define "nova-postgres.tls.secretName" -}}
{{- include "nova-common.tls.secretName" (dict "ctx" . "fullname" (include "nova-postgres.fullname" .)) -}}
{{- end -}}

{{/* Pod DNS name under the headless Service: the name replicas and pg_rewind connect to (Patroni's connect_address
with TLS on, so that sslmode=verify-full can check it). Usage: {{ include "nova-postgres.tls.podHost" (dict "ctx" $ "pod" "$(POD_NAME)") }} */}}
{{- define "nova-postgres.tls.podHost" -}}
{{- printf "%s.%s.%s.svc.%s" .pod (include "nova-postgres.name.suffixed" (dict "ctx" .ctx "suffix" "headless")) (include "nova-postgres.namespace" .ctx) .ctx.Values.clusterDomain -}}
{{- end -}}

{{/* DNS names of the server certificate, as a YAML list: the -primary and -replicas Services and, with the pooler,
-pooler-rw / -pooler-ro (short, namespaced and full forms), every pod under the headless Service, localhost (Patroni's and the exporter's local connections).
Usage: {{ include "nova-postgres.tls.dnsNames" . | fromYamlArray }} */}}
{{- define "nova-postgres.tls.dnsNames" -}}
{{- $ns := include "nova-postgres.namespace" . -}}
{{- $fullname := include "nova-postgres.fullname" . -}}
{{- $names := list -}}
{{- $services := list "primary" "replicas" -}}
{{- if .Values.pooler.enabled -}}{{/* the poolers terminate the services' TLS with the same certificate */}}
{{- range $role := include "nova-postgres.pooler.roles" . | fromJsonArray }}{{ $services = append $services (printf "pooler-%s" $role) }}{{ end -}}
{{- end -}}
{{- range $suffix := $services -}}
{{- $svc := include "nova-postgres.name.suffixed" (dict "ctx" $ "suffix" $suffix) -}}
{{- $names = concat $names (list (printf "%s.%s.svc.%s" $svc $ns $.Values.clusterDomain) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s" $svc $ns) $svc) -}}
{{- end -}}
{{- range $i := until (int .Values.replicas) -}}
{{- $names = append $names (include "nova-postgres.tls.podHost" (dict "ctx" $ "pod" (printf "%s-%d" $fullname $i))) -}}
{{- end -}}
{{- if include "nova-postgres.tls.etcd" . -}}
{{- $etcd := include "nova-postgres.etcd.fullname" . -}}
{{- $peer := include "nova-postgres.etcd.peerService" . -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $names = append $names (printf "%s-%d.%s.%s.svc.%s" $etcd $i $peer $ns $.Values.clusterDomain) -}}
{{- end -}}
{{- end -}}
{{- $names = append $names "localhost" -}}
{{- toYaml $names -}}
{{- end -}}

{{/* libpq TLS options of Patroni's superuser and replication connections (replication, pg_basebackup, pg_rewind,
Patroni's local connection): verify-full (the CA and the name) when TLS is required; while it is not (the migration
step, when members that do not serve TLS yet may still be the primary), prefer.
Usage: {{ include "nova-postgres.tls.clientAuth" . | nindent 6 }} */}}
{{- define "nova-postgres.tls.clientAuth" -}}
sslmode: {{ ternary "verify-full" "prefer" (eq (include "nova-common.tls.required" .) "true") }}
sslrootcert: {{ include "nova-postgres.tls.dir" . }}/ca.crt
{{- end -}}

{{/* PostgreSQL server parameters of TLS (pod-local, in patroni.yml's postgresql.parameters: they name the pod's
mount, and PostgreSQL rereads them on reload). Usage: {{ include "nova-postgres.tls.parameters" . | nindent 4 }} */}}
{{- define "nova-postgres.tls.parameters" -}}
{{- $dir := include "nova-postgres.tls.dir" . -}}
ssl: "on"
ssl_cert_file: {{ $dir }}/tls.crt
ssl_key_file: {{ $dir }}/tls.key
ssl_ca_file: {{ $dir }}/ca.crt
ssl_min_protocol_version: TLSv1.2
{{- end -}}

{{/* pg_hba lines of the chart (after postgresql.extraPgHba): `hostssl` for replication and clients with TLS on, plus
the plain `host` lines only while TLS is not required. Usage: {{ include "nova-postgres.tls.pgHba" . | nindent 4 }} */}}
{{- define "nova-postgres.tls.pgHba" -}}
{{- $repl := .Values.auth.replicationUsername -}}
- local all {{ .Values.auth.superuserUsername }} peer
- local all all scram-sha-256
{{- if include "nova-common.tls.enabled" . }}
- hostssl replication {{ $repl }} all scram-sha-256
- hostssl all all all scram-sha-256
{{- end }}
{{- if not (include "nova-common.tls.required" .) }}
- host replication {{ $repl }} all scram-sha-256
- host all all all scram-sha-256
{{- end }}
{{- end -}}


{{/* "true" when etcd speaks TLS (etcd.tls.enabled with the chart's TLS on; etcd.enabled). Fails when etcd.tls.enabled
is set without a certificate source. Usage: {{ if include "nova-postgres.tls.etcd" . }} */}}
{{- define "nova-postgres.tls.etcd" -}}
{{- if and .Values.etcd.enabled .Values.etcd.tls.enabled -}}
{{- if not (include "nova-common.tls.enabled" .) -}}
{{- fail "etcd.tls.enabled uses the chart's TLS certificate: set tls.enabled=true (or global.tls.enabled in the umbrella) with tls.issuerRef.name or tls.existingSecret" -}}
{{- end -}}
true
{{- end -}}
{{- end -}}

{{/* URL scheme of etcd. Usage: {{ include "nova-postgres.tls.etcdScheme" . }} */}}
{{- define "nova-postgres.tls.etcdScheme" -}}
{{- ternary "https" "http" (eq (include "nova-postgres.tls.etcd" .) "true") -}}
{{- end -}}
