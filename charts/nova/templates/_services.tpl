{{/*
The microservices: services.defaults deep-merged with services.microservices.<name>. Templates merge once
(nova.services fills a dict with every service) and range over it; nova.validate checks the result once.
*/}}

{{/* Whether a service is enabled: its own `enabled`, else services.defaults.enabled.
Usage: {{ if eq (include "nova.service.enabled" (dict "ctx" $ "name" "user-service")) "true" }} */}}
{{- define "nova.service.enabled" -}}
{{- $own := get .ctx.Values.services.microservices .name -}}
{{- $default := ne (toString .ctx.Values.services.defaults.enabled) "false" -}}
{{- ternary (ne (toString (get $own "enabled")) "false") $default (and (kindIs "map" $own) (hasKey $own "enabled")) -}}
{{- end -}}

{{/* Merge one service into .into (a dict, mutated): .into.<name> = defaults + own settings, with name,
fullname, enabled and the default image repository nova/<name>.
Usage: {{- include "nova.service.merge" (dict "ctx" $ "name" "user-service" "into" $services) -}} */}}
{{- define "nova.service.merge" -}}
{{- $ctx := .ctx -}}
{{- $own := get $ctx.Values.services.microservices .name -}}{{/* a map: values.schema.json says so */}}
{{- $cfg := deepCopy $ctx.Values.services.defaults -}}
{{- include "nova-common.deepMerge" (dict "dst" $cfg "src" $own) -}}
{{- $_ := set $cfg "name" .name -}}
{{- $_ := set $cfg "enabled" (eq (include "nova.service.enabled" .) "true") -}}
{{- if not $cfg.image.repository -}}
{{- $_ := set $cfg.image "repository" (printf "nova/%s" .name) -}}
{{- end -}}
{{- $_ := set $cfg "fullname" (include "nova.componentName" (dict "ctx" $ctx "component" .name)) -}}
{{- $_ := set .into .name $cfg -}}
{{- end -}}

{{/* Fill .into with the merged settings of every service, enabled or not (range it and skip .enabled false).
The merge runs once per render: the first call keeps its result on the chart's root context, which Helm 3 and 4
hand to every template of this chart (tests/unit/test_nova_render.py checks both), and later calls copy it
from there. The settings of a service are shared by every template: read them, never set into them.
Usage: {{- $services := dict }}{{ include "nova.services" (dict "ctx" $ "into" $services) }} */}}
{{- define "nova.services" -}}
{{- $merged := get .ctx "nova.services.merged" -}}
{{- if not $merged -}}
{{- $merged = dict -}}
{{- range $name, $_ := .ctx.Values.services.microservices -}}
{{- include "nova.service.merge" (dict "ctx" $.ctx "name" $name "into" $merged) -}}
{{- end -}}
{{- $_ := set .ctx "nova.services.merged" $merged -}}
{{- end -}}
{{- range $name, $cfg := $merged }}{{ $_ := set $.into $name $cfg }}{{ end -}}
{{- end -}}

{{/* Names of the enabled services, sorted, as a YAML list (no merge: for an "any service at all?" test). Usage: {{- range include "nova.service.names" $ | fromYamlArray }} */}}
{{- define "nova.service.names" -}}
{{- $names := list -}}
{{- range $name, $_ := .Values.services.microservices -}}
{{- if eq (include "nova.service.enabled" (dict "ctx" $ "name" $name)) "true" -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- toYaml (sortAlpha $names) -}}
{{- end -}}

{{/* The restricted container securityContext with a service's additions.
Usage: {{ include "nova.containerSecurityContext" (dict "ctx" $ "override" $svc.containerSecurityContext) }} */}}
{{- define "nova.containerSecurityContext" -}}
{{- include "nova-common.securityContext" (dict "base" .ctx.Values.securityContext.container "override" .override) -}}
{{- end -}}

{{/* The restricted pod securityContext with a service's additions.
Usage: {{ include "nova.podSecurityContext" (dict "ctx" $ "override" $svc.podSecurityContext) }} */}}
{{- define "nova.podSecurityContext" -}}
{{- include "nova-common.securityContext" (dict "base" .ctx.Values.securityContext.pod "override" .override) -}}
{{- end -}}

{{/*
Data of a service's ConfigMap (resilience settings, logging, peer URLs from .services), read as env.
Usage: {{ include "nova.service.configData" (dict "ctx" $ "svc" $svc "services" $services) }}
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
  "DATABASE_POOL_SIZE" (toString $r.dbPoolSize)
  "REDIS_POOL_SIZE" (toString $r.redisPoolSize)
  "CIRCUIT_BREAKER_FAILURE_RATE" (toString $r.circuitBreakerFailureRate)
  "RETRY_ATTEMPTS" (toString $r.retryAttempts)
  "RETRY_BACKOFF" (toString $r.retryBackoff)
-}}
{{- $ns := include "nova.servicesNamespace" $ctx -}}
{{- range $callee := $svc.calls -}}
{{- with get $.services $callee -}}{{/* an unknown callee is nova.validate's error */}}
{{- $host := include "nova.svcHost" (dict "ctx" $ctx "name" .fullname "namespace" $ns) -}}
{{- $_ := set $data (printf "%s_URL" ($callee | upper | replace "-" "_")) (printf "http://%s:%d" $host (int .port)) -}}
{{- end -}}
{{- end -}}
{{- if $svc.secrets.apns -}}
{{- $_ := set $data "APNS_ENABLED" (toString (ne (toString $ctx.Values.secrets.apns.existingSecret) "")) -}}
{{- end -}}
{{- if $svc.secrets.turn -}}
{{- $_ := set $data "TURN_URIS" (join "," $ctx.Values.secrets.turn.uris) -}}
{{- end -}}
{{- with include "nova.kafka.configData" (dict "ctx" $ctx "svc" $svc) -}}
{{- $data = merge $data (fromYaml .) -}}
{{- end -}}
{{- toYaml $data -}}
{{- end -}}
