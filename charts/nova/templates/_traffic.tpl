{{/*
Traffic in: the Service's type and policies, the Ingress and the Gateway API HTTPRoute of a service
(services.*.service / ingress / httpRoute), and their cross-field checks.
*/}}

{{/* Name of the TLS Secret of a service's Ingress: ingress.tls.secretName, else <fullname>-tls.
Usage: {{ include "nova.ingress.tlsSecret" $svc }} */}}
{{- define "nova.ingress.tlsSecret" -}}
{{- default (include "nova-common.name.suffixed" (dict "name" .fullname "suffix" "tls")) .ingress.tls.secretName -}}
{{- end -}}

{{/* Annotations of a service's Ingress: its own, plus cert-manager's issuer annotation when certManager.issuer is set.
Usage: {{ include "nova.ingress.annotations" $svc }} */}}
{{- define "nova.ingress.annotations" -}}
{{- $out := deepCopy (default dict .ingress.annotations) -}}
{{- $tls := .ingress.tls -}}
{{- if and $tls.enabled $tls.certManager.issuer -}}
{{- $key := ternary "cert-manager.io/cluster-issuer" "cert-manager.io/issuer" (eq $tls.certManager.kind "ClusterIssuer") -}}
{{- $_ := set $out $key $tls.certManager.issuer -}}
{{- end -}}
{{- with $out }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/* Checks of a service's Service, Ingress and HTTPRoute settings (from nova.validate.service, once per service).
Usage: {{ include "nova.validate.traffic" (dict "ctx" $ "svc" $svc) }} */}}
{{- define "nova.validate.traffic" -}}
{{- $svc := .svc -}}
{{- $where := printf "services.microservices.%s" $svc.name -}}
{{- $s := $svc.service -}}
{{- if and $s.externalTrafficPolicy (not (has $s.type (list "NodePort" "LoadBalancer"))) -}}
{{- fail (printf "%s.service.externalTrafficPolicy=%s applies only to service.type NodePort or LoadBalancer (type is %s): clear it or change the type" $where $s.externalTrafficPolicy $s.type) -}}
{{- end -}}
{{- if $s.trafficDistribution -}}
{{- $need := ternary "1.31" "1.34" (eq $s.trafficDistribution "PreferClose") -}}
{{- if not (semverCompare (printf ">=%s-0" $need) .ctx.Capabilities.KubeVersion.Version) -}}
{{- fail (printf "%s.service.trafficDistribution=%s needs Kubernetes >= %s, the cluster is %s: clear it (or render with --kube-version for your cluster)" $where $s.trafficDistribution $need .ctx.Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- end -}}
{{- $in := $svc.ingress -}}
{{- if $in.enabled -}}
{{- if not $in.hosts -}}
{{- fail (printf "%s.ingress.enabled=true but ingress.hosts is empty: give at least one host (e.g. [{host: api.example.com}])" $where) -}}
{{- end -}}
{{- if and $in.tls.enabled (not $in.tls.secretName) (not $in.tls.certManager.issuer) -}}
{{- fail (printf "%s.ingress.tls.enabled=true needs ingress.tls.secretName (an existing kubernetes.io/tls Secret) or ingress.tls.certManager.issuer (cert-manager creates the Secret)" $where) -}}
{{- end -}}
{{- end -}}
{{- $route := $svc.httpRoute -}}
{{- if and $route.enabled (not $route.parentRefs) -}}
{{- fail (printf "%s.httpRoute.enabled=true but httpRoute.parentRefs is empty: name the Gateway the route attaches to (e.g. [{name: public, namespace: gateway}])" $where) -}}
{{- end -}}
{{- if and $route.enabled $route.rules (or $route.matches $route.timeouts) -}}
{{- fail (printf "%s.httpRoute: give either rules or matches/timeouts (matches and timeouts shape the generated rule, rules replace it)" $where) -}}
{{- end -}}
{{- end -}}
