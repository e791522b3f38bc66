{{/*
Kafka client wiring (kafka.*, services.*.kafka): bootstrap addresses, egress peers and ports, the per-service
names and client settings, and their checks. No broker is installed by this chart.
*/}}

{{/* Namespace of the Strimzi Kafka cluster: kafka.strimzi.namespace, else the services namespace.
Usage: {{ include "nova.kafka.strimziNamespace" $ }} */}}
{{- define "nova.kafka.strimziNamespace" -}}
{{- default (include "nova.servicesNamespace" .) .Values.kafka.strimzi.namespace -}}
{{- end -}}

{{/* Bootstrap brokers as a YAML list of host:port: kafka.brokers, or the Strimzi cluster's bootstrap Service.
Usage: {{ include "nova.kafka.brokers" $ | fromYamlArray }} */}}
{{- define "nova.kafka.brokers" -}}
{{- if .Values.kafka.strimzi.cluster -}}
{{- $host := include "nova.svcHost" (dict "ctx" . "name" (printf "%s-kafka-bootstrap" .Values.kafka.strimzi.cluster) "namespace" (include "nova.kafka.strimziNamespace" .)) -}}
{{- toYaml (list (printf "%s:%d" $host (int .Values.kafka.strimzi.port))) -}}
{{- else -}}
{{- toYaml (default list .Values.kafka.brokers) -}}
{{- end -}}
{{- end -}}

{{/* The distinct broker ports, sorted, as a YAML list of integers. Usage: {{ include "nova.kafka.ports" $ | fromYamlArray }} */}}
{{- define "nova.kafka.ports" -}}
{{- $ports := list -}}
{{- range include "nova.kafka.brokers" . | fromYamlArray -}}
{{- $ports = append $ports (int (last (splitList ":" .))) -}}
{{- end -}}
{{- toYaml (uniq $ports | sortAlpha) -}}
{{- end -}}

{{/* NetworkPolicy egress rule to the brokers: kafka.networkPolicy.to, else the Strimzi cluster's broker pods, on
the broker ports only. Usage: {{ include "nova.netpol.kafkaEgress" $ }} */}}
{{- define "nova.netpol.kafkaEgress" -}}
{{- $k := .Values.kafka -}}
- to:
    {{- if $k.networkPolicy.to }}
    {{- toYaml $k.networkPolicy.to | nindent 4 }}
    {{- else }}
    {{- include "nova-common.netpol.peer" (dict "namespace" (include "nova.kafka.strimziNamespace" .) "labels" (dict "strimzi.io/cluster" $k.strimzi.cluster "strimzi.io/kind" "Kafka")) | nindent 4 }}
    {{- end }}
  ports:
    {{- include "nova-common.netpol.ports" (dict "ports" (include "nova.kafka.ports" . | fromYamlArray) "protocol" "TCP") | trim | nindent 4 }}
{{- end -}}

{{/* A service's Kafka names and client settings, resolved (user, group, topics, dlq, transactionalIdPrefix,
client = kafka.client with the service's overrides), as YAML. Usage: {{ include "nova.kafka.settings" (dict "ctx" $ "svc" $svc) | fromYaml }} */}}
{{- define "nova.kafka.settings" -}}
{{- $k := .svc.kafka -}}
{{- $client := deepCopy .ctx.Values.kafka.client -}}
{{- include "nova-common.deepMerge" (dict "dst" $client "src" (default dict $k.client)) -}}
{{- $out := dict
  "user" (default (printf "%s-kafka" .svc.fullname) $k.user)
  "group" (default .svc.fullname $k.consumerGroup)
  "topics" (default list $k.topics)
  "dlq" (default (printf "%s.dlq" .svc.fullname) $k.deadLetterTopic)
  "transactionalIdPrefix" (default (printf "%s-" .svc.fullname) $k.transactionalIdPrefix)
  "client" $client -}}
{{- toYaml $out -}}
{{- end -}}

{{/* KAFKA_* entries of a service's ConfigMap (nothing when the service does not use Kafka). KAFKA_BROKERS itself is
a plain env var of the container (it must win over the credentials Secret's envFrom).
Usage: {{ include "nova.kafka.configData" (dict "ctx" $ "svc" $svc) | fromYaml }} */}}
{{- define "nova.kafka.configData" -}}
{{- if .svc.kafka.enabled -}}
{{- $ctx := .ctx -}}
{{- $k := $ctx.Values.kafka -}}
{{- $s := include "nova.kafka.settings" . | fromYaml -}}
{{- $c := $s.client -}}
{{- $protocol := printf "%s%s" (ternary "SASL_" "" $k.sasl.enabled) (ternary "SSL" "PLAINTEXT" $k.tls.enabled) -}}
{{- $data := dict
  "KAFKA_SECURITY_PROTOCOL" $protocol
  "KAFKA_CONSUMER_GROUP" $s.group
  "KAFKA_TOPICS" (join "," $s.topics)
  "KAFKA_DLQ_TOPIC" $s.dlq
  "KAFKA_DLQ_AFTER_ATTEMPTS" (toString $c.dlqAfterAttempts)
  "KAFKA_ENABLE_IDEMPOTENCE" (toString $c.enableIdempotence)
  "KAFKA_ACKS" (toString $c.acks)
  "KAFKA_ISOLATION_LEVEL" (toString $c.isolationLevel)
  "KAFKA_ENABLE_AUTO_COMMIT" (toString $c.enableAutoCommit)
  "KAFKA_RETRIES" (toString (int64 $c.retries))
  "KAFKA_RETRY_BACKOFF_MS" (toString (int64 $c.retryBackoffMs))
  "KAFKA_RETRY_BACKOFF_MAX_MS" (toString (int64 $c.retryBackoffMaxMs))
  "KAFKA_DELIVERY_TIMEOUT_MS" (toString (int64 $c.deliveryTimeoutMs))
  "KAFKA_MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION" (toString (int64 $c.maxInFlightRequestsPerConnection))
-}}
{{- if $c.transactional }}{{ $_ := set $data "KAFKA_TRANSACTIONAL_ID_PREFIX" $s.transactionalIdPrefix }}{{ end -}}
{{- if $k.sasl.enabled -}}
{{- $_ := set $data "KAFKA_SASL_MECHANISM" $k.sasl.mechanism -}}
{{- $_ := set $data "KAFKA_SASL_USERNAME" $s.user -}}
{{- end -}}
{{- if $k.tls.enabled }}{{ $_ := set $data "KAFKA_SSL_CA_LOCATION" (printf "/etc/nova/kafka/%s" $k.tls.caFile) }}{{ end -}}
{{- toYaml $data -}}
{{- end -}}
{{- end -}}

{{/* Env of a service's container for Kafka: KAFKA_BROKERS and the SASL password (from kafka.sasl.existingSecret key
<user>-password, else Secret <user> key password). Usage: {{ include "nova.kafka.env" (dict "ctx" $ "svc" $svc) }} */}}
{{- define "nova.kafka.env" -}}
{{- if .svc.kafka.enabled -}}
{{- $k := .ctx.Values.kafka -}}
{{- $s := include "nova.kafka.settings" . | fromYaml -}}
- name: KAFKA_BROKERS
  value: {{ join "," (include "nova.kafka.brokers" .ctx | fromYamlArray) | quote }}
{{- if $k.sasl.enabled }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ default $s.user $k.sasl.existingSecret }}
      key: {{ ternary (printf "%s-password" $s.user) "password" (ne $k.sasl.existingSecret "") }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* Checks of a service's Kafka settings against kafka.* (from nova.validate.service). Every message names the key.
Usage: {{ include "nova.validate.kafka" (dict "ctx" $ "svc" $svc) }} */}}
{{- define "nova.validate.kafka" -}}
{{- if .svc.kafka.enabled -}}
{{- $ctx := .ctx -}}
{{- $k := $ctx.Values.kafka -}}
{{- $where := printf "services.microservices.%s.kafka" .svc.name -}}
{{- if and $k.brokers $k.strimzi.cluster -}}
{{- fail "kafka.brokers and kafka.strimzi.cluster are both set: give the brokers as host:port or a Strimzi cluster, not both" -}}
{{- end -}}
{{- if not (or $k.brokers $k.strimzi.cluster) -}}
{{- fail (printf "%s.enabled=true but no brokers: set kafka.brokers (host:port list) or kafka.strimzi.cluster (and kafka.strimzi.namespace)" $where) -}}
{{- end -}}
{{- if and $k.brokers (not $k.networkPolicy.to) $ctx.Values.networkPolicy.enabled -}}
{{- fail "kafka.brokers is set but kafka.networkPolicy.to is empty, so the services' egress policy would block the brokers: give the brokers' namespace/pod selectors (in-cluster) or ipBlock CIDRs (external)" -}}
{{- end -}}
{{- if or $ctx.Values.secrets.kafka.brokers $ctx.Values.secrets.kafka.existingSecret -}}
{{- fail (printf "%s.enabled=true cannot be combined with secrets.kafka.brokers/existingSecret (KAFKA_BROKERS without egress): move the brokers to kafka.brokers and clear secrets.kafka" $where) -}}
{{- end -}}
{{- if and $k.tls.enabled (not $k.tls.caSecret) -}}
{{- fail "kafka.tls.enabled=true needs kafka.tls.caSecret: the Secret with the brokers' CA certificate (Strimzi: <cluster>-cluster-ca-cert)" -}}
{{- end -}}
{{- $s := include "nova.kafka.settings" . | fromYaml -}}
{{- $c := $s.client -}}
{{- if not $s.topics -}}
{{- fail (printf "%s.topics is empty: list the topics the service consumes and produces" $where) -}}
{{- end -}}
{{- if has $s.dlq $s.topics -}}
{{- fail (printf "%s.deadLetterTopic=%s is also in %s.topics: the dead-letter topic must be a topic of its own" $where $s.dlq $where) -}}
{{- end -}}
{{- $client := printf "kafka.client (or %s.client)" $where -}}
{{- if and $c.enableIdempotence (not (has (toString $c.acks) (list "all" "-1"))) -}}
{{- fail (printf "%s: enableIdempotence=true requires acks=all (got acks=%v): set acks: all, or enableIdempotence: false" $client $c.acks) -}}
{{- end -}}
{{- if and $c.enableIdempotence (eq (int64 $c.retries) 0) -}}
{{- fail (printf "%s: enableIdempotence=true requires retries > 0 (got 0)" $client) -}}
{{- end -}}
{{- if and $c.enableIdempotence (gt (int64 $c.maxInFlightRequestsPerConnection) 5) -}}
{{- fail (printf "%s: enableIdempotence=true allows at most 5 in-flight requests per connection (got maxInFlightRequestsPerConnection=%v)" $client $c.maxInFlightRequestsPerConnection) -}}
{{- end -}}
{{- if $c.transactional -}}
{{- if not $c.enableIdempotence -}}
{{- fail (printf "%s: transactional=true (exactly-once) requires enableIdempotence=true" $client) -}}
{{- end -}}
{{- if $c.enableAutoCommit -}}
{{- fail (printf "%s: transactional=true commits offsets in the transaction, so enableAutoCommit must be false" $client) -}}
{{- end -}}
{{- if ne $c.isolationLevel "read_committed" -}}
{{- fail (printf "%s: transactional=true requires isolationLevel=read_committed, or consumers read aborted records (got %s)" $client $c.isolationLevel) -}}
{{- end -}}
{{- end -}}
{{- if lt (int64 $c.retryBackoffMaxMs) (int64 $c.retryBackoffMs) -}}
{{- fail (printf "%s: retryBackoffMaxMs=%v is below retryBackoffMs=%v" $client $c.retryBackoffMaxMs $c.retryBackoffMs) -}}
{{- end -}}
{{- if and (or $k.strimzi.topics.create $k.strimzi.users.create) (not $k.strimzi.cluster) -}}
{{- fail "kafka.strimzi.topics.create/users.create need kafka.strimzi.cluster (the Kafka resource the topics and users belong to)" -}}
{{- end -}}
{{- end -}}
{{- end -}}
