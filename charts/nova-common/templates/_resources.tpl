{{/*
Container resources and probes.
*/}}

{{/* A quantity in milli-units, rounded ("500m" -> 500, "1" -> 1000, "1Gi" -> 1073741824000), or "" when it is
not a plain Kubernetes quantity (the values schema refuses those; exponents are not compared).
Usage: {{ include "nova-common.quantity.milli" "512Mi" }} */}}
{{- define "nova-common.quantity.milli" -}}
{{- $q := toString . | trim -}}
{{- $re := "^([0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$" -}}
{{- /* one regexp call (sprig compiles the pattern on every call): a match becomes "<number> <suffix>", which has
a space that a matching input cannot have; anything else comes back unchanged */ -}}
{{- $parts := regexReplaceAll $re $q "${1} ${2}" -}}
{{- if ne $parts $q -}}
{{- $number := index (splitList " " $parts) 0 -}}
{{- $suffix := index (splitList " " $parts) 1 -}}
{{- $factors := dict "" 1000.0 "m" 1.0 "k" 1e6 "M" 1e9 "G" 1e12 "T" 1e15 "P" 1e18 "E" 1e21 "Ki" 1024000.0 "Mi" 1048576000.0 "Gi" 1073741824000.0 "Ti" 1099511627776000.0 "Pi" 1125899906842624000.0 "Ei" 1152921504606846976000.0 -}}
{{- round (mulf (float64 $number) (get $factors $suffix)) 0 -}}
{{- end -}}
{{- end -}}

{{/* The resources block of a container, as YAML, after refusing a request above its limit (cpu or memory):
the error names .key, the values path of the block.
Usage: resources: {{- include "nova-common.resources" (dict "resources" .Values.resources "key" "resources") | nindent 12 }} */}}
{{- define "nova-common.resources" -}}
{{- $r := default dict .resources -}}
{{- $requests := default dict $r.requests -}}
{{- $limits := default dict $r.limits -}}
{{- range $resource := list "cpu" "memory" -}}
{{- if and (hasKey $requests $resource) (hasKey $limits $resource) -}}
{{- $request := include "nova-common.quantity.milli" (get $requests $resource) -}}
{{- $limit := include "nova-common.quantity.milli" (get $limits $resource) -}}
{{- if and $request $limit (gt (float64 $request) (float64 $limit)) -}}
{{- fail (printf "%s: requests.%s=%v is above limits.%s=%v; lower the request or raise the limit" $.key $resource (get $requests $resource) $resource (get $limits $resource)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $r -}}
{{- end -}}

{{/* A probe: the handler (httpGet, exec, tcpSocket or grpc) and the settings (periodSeconds, timeoutSeconds,
failureThreshold, ...) of a values block, whose own handler keys and `path` are left out.
Usage: startupProbe: {{- include "nova-common.probe" (dict "handler" (dict "httpGet" (dict "path" "/healthz" "port" "http")) "settings" $svc.probes.startup) | nindent 12 }} */}}
{{- define "nova-common.probe" -}}
{{- $settings := omit (default dict .settings) "httpGet" "exec" "tcpSocket" "grpc" "path" -}}
{{- toYaml (merge (deepCopy (default dict .handler)) $settings) -}}
{{- end -}}
