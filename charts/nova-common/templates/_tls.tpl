{{/*
TLS in transit (docs/tls.md), shared by nova-redis and nova-postgres: the effective switch (the chart's `tls`
block or the umbrella's `global.tls`), the Secret holding tls.crt / tls.key / ca.crt, and the cert-manager
Certificate that fills it. Certificates come from cert-manager (an issuer in values) or from an existing Secret;
the charts never generate a CA or a key (genCA on every render would rotate it under `helm template`).
*/}}

{{/* "true" when TLS is on for this chart: .Values.tls.enabled or .Values.global.tls.enabled, else "".
Usage: {{ if include "nova-common.tls.enabled" $ }} */}}
{{- define "nova-common.tls.enabled" -}}
{{- $global := dig "tls" "enabled" false (.Values.global | default dict) -}}
{{- if or (dig "enabled" false (.Values.tls | default dict)) $global -}}true{{- end -}}
{{- end -}}

{{/* "true" when TLS is on and required (plain connections refused): global.tls.required when the umbrella sets
it, else .Values.tls.required. Usage: {{ if include "nova-common.tls.required" $ }} */}}
{{- define "nova-common.tls.required" -}}
{{- if include "nova-common.tls.enabled" . -}}
{{- $own := dig "required" true (.Values.tls | default dict) -}}
{{- if dig "tls" "required" $own (.Values.global | default dict) -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret with tls.crt, tls.key and ca.crt: tls.existingSecret (tpl), else <fullname>-tls (written by
the chart's Certificate). Usage: {{ include "nova-common.tls.secretName" (dict "ctx" $ "fullname" $fullname) }} */}}
{{- define "nova-common.tls.secretName" -}}
{{- $tls := .ctx.Values.tls | default dict -}}
{{- if $tls.existingSecret -}}
{{- include "nova-common.tplValue" (dict "value" $tls.existingSecret "ctx" .ctx) -}}
{{- else -}}
{{- include "nova-common.name.suffixed" (dict "name" .fullname "suffix" "tls") -}}
{{- end -}}
{{- end -}}

{{/* The issuerRef of the chart's Certificate: tls.issuerRef when its name is set, else global.tls.issuerRef; fails
naming the keys to set when neither names an issuer. `key` is the values path prefix of the issuer for messages,
`alternative` (optional) the other way out (default: <key>.existingSecret with its three keys).
Usage: {{ include "nova-common.tls.issuerRef" (dict "ctx" $ "key" "tls") }} */}}
{{- define "nova-common.tls.issuerRef" -}}
{{- $own := dig "issuerRef" dict (.ctx.Values.tls | default dict) -}}
{{- $global := dig "tls" "issuerRef" dict (.ctx.Values.global | default dict) -}}
{{- $ref := ternary $own $global (ne (toString (dig "name" "" $own)) "") -}}
{{- if not (dig "name" "" $ref) -}}
{{- $alternative := default (printf "%s.existingSecret (a Secret with tls.crt, tls.key and ca.crt)" .key) .alternative -}}
{{- fail (printf "TLS is on but no certificate source is set: set %s.issuerRef.name (a cert-manager Issuer or ClusterIssuer; or global.tls.issuerRef.name in the umbrella) or %s" .key $alternative) -}}
{{- end -}}
name: {{ $ref.name }}
kind: {{ default "Issuer" $ref.kind }}
group: {{ default "cert-manager.io" $ref.group }}
{{- end -}}

{{/* A cert-manager Certificate (cert-manager.io/v1) writing the chart's TLS Secret; nothing when tls.existingSecret
is set. dnsNames/ipAddresses: lists; labels: the rendered label block.
`alternative`: optional, see nova-common.tls.issuerRef.
Usage: {{ include "nova-common.tls.certificate" (dict "ctx" $ "fullname" $f "namespace" $ns "labels" $labels "dnsNames" $names "ipAddresses" (list "127.0.0.1") "key" "tls") }} */}}
{{- define "nova-common.tls.certificate" -}}
{{- $tls := .ctx.Values.tls | default dict -}}
{{- if not $tls.existingSecret -}}
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: {{ include "nova-common.tls.secretName" (dict "ctx" .ctx "fullname" .fullname) }}
  namespace: {{ .namespace }}
  labels:
    {{- .labels | nindent 4 }}
spec:
  secretName: {{ include "nova-common.tls.secretName" (dict "ctx" .ctx "fullname" .fullname) }}
  commonName: {{ first .dnsNames | trunc 64 }}
  dnsNames:
    {{- range concat .dnsNames ($tls.extraDnsNames | default list) | uniq }}
    - {{ . | quote }}
    {{- end }}
  {{- with .ipAddresses }}
  ipAddresses:
    {{- range . }}
    - {{ . | quote }}
    {{- end }}
  {{- end }}
  duration: {{ $tls.duration | default "2160h" }}
  renewBefore: {{ $tls.renewBefore | default "360h" }}
  privateKey:
    algorithm: ECDSA
    size: 256
    rotationPolicy: Always
  usages:
    - server auth
    - client auth
  issuerRef:
    {{- include "nova-common.tls.issuerRef" (dict "ctx" .ctx "key" .key "alternative" .alternative) | nindent 4 }}
{{- end -}}
{{- end -}}
