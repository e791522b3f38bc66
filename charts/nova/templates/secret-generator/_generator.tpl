{{/*
The in-cluster secret generator (docs/gitops.md): for renders without `lookup` (Argo CD, `helm template`), a Job
creates each missing credential Secret once, with values made in the Job, and never updates one. Its plan (the
Secrets, their keys and copies) comes from the same helpers as secrets/credentials.yaml.
*/}}

{{/* Whether the generator Job replaces `lookup` (global.gitops or secrets.generator.enabled).
Usage: {{ if eq (include "nova.secrets.generator" $) "true" }} */}}
{{- define "nova.secrets.generator" -}}
{{- or (dig "gitops" false (.Values.global | default dict)) .Values.secrets.generator.enabled | toString -}}
{{- end -}}

{{/* Name of the generator's objects (ServiceAccount, Roles, ConfigMap). Usage: {{ include "nova.secrets.generatorName" $ }} */}}
{{- define "nova.secrets.generatorName" -}}
{{- include "nova.componentName" (dict "ctx" . "component" "secret-generator") -}}
{{- end -}}

{{/* Argo CD annotations of an object: its sync wave (docs/gitops.md "Sync waves"), as YAML lines.
Usage: {{ include "nova.argocd.wave" "-2" }} */}}
{{- define "nova.argocd.wave" -}}
argocd.argoproj.io/sync-wave: {{ . | quote }}
{{- end -}}

{{/*
The generator's plan as JSON: the marker ConfigMap, the opt-in for re-creating a deleted Secret
(secrets.generateMissingOnUpgrade), and one set per generated credential with its keys and its targets (the
Secret holding every key first, then copies in the services namespace with the keys the services read).
Usage: {{ include "nova.secrets.plan" $ }}
*/}}
{{- define "nova.secrets.plan" -}}
{{- $svcNs := include "nova.servicesNamespace" . -}}
{{- $services := dict -}}{{- include "nova.services" (dict "ctx" . "into" $services) -}}
{{- $sets := list -}}
{{- $redisKeys := list -}}
{{- $pgKeys := list -}}
{{- $needJwt := false -}}
{{- $needTurn := false -}}
{{- range $name, $svc := $services -}}
{{- if $svc.enabled -}}
{{- if ne $svc.secrets.jwt "none" }}{{ $needJwt = true }}{{ end -}}
{{- if $svc.secrets.turn }}{{ $needTurn = true }}{{ end -}}
{{- if $svc.redis.enabled -}}
{{- $redisKeys = append $redisKeys "sentinel-password" -}}
{{- $redisKeys = append $redisKeys (ternary (printf "acl-%s-password" (toString $svc.redis.user)) "redis-password" (ne (toString $svc.redis.user) "")) -}}
{{- end -}}
{{- if $svc.database.enabled -}}
{{- $pgKeys = append $pgKeys (printf "%s-password" $svc.database.login) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* Redis: redis-password, sentinel-password, acl-<user>-password (the keys credentials.yaml renders) */ -}}
{{- if eq (include "nova.redis.generated" .) "true" -}}
{{- $ns := include "nova.redis.namespace" . -}}
{{- $name := include "nova.redis.managedSecretName" . -}}
{{- $keys := dict "redis-password" "password" "sentinel-password" "password" -}}
{{- range $user, $_ := default dict .Values.redis.aclUsers -}}
{{- $_ := set $keys (printf "acl-%s-password" $user) "password" -}}
{{- end -}}
{{- $targets := list (dict "namespace" $ns "name" $name "keys" (keys $keys | sortAlpha)) -}}
{{- if and (ne $ns $svcNs) $redisKeys -}}
{{- $targets = append $targets (dict "namespace" $svcNs "name" $name "keys" ($redisKeys | uniq | sortAlpha)) -}}
{{- end -}}
{{- $sets = append $sets (dict "id" "redis" "component" "redis-credentials" "keys" $keys "targets" $targets) -}}
{{- end -}}
{{- /* PostgreSQL: superuser, replication, rest and one <login>-password per login */ -}}
{{- if eq (include "nova.postgres.generated" .) "true" -}}
{{- $ns := include "nova.postgres.namespace" . -}}
{{- $name := include "nova.postgres.managedSecretName" . -}}
{{- $keys := dict "superuser-password" "password" "replication-password" "password" "rest-password" "password" -}}
{{- range $login := include "nova.postgres.logins" (dict "ctx" . "services" $services) | fromYamlArray -}}
{{- $_ := set $keys (printf "%s-password" $login) "password" -}}
{{- end -}}
{{- $targets := list (dict "namespace" $ns "name" $name "keys" (keys $keys | sortAlpha)) -}}
{{- if and (ne $ns $svcNs) $pgKeys -}}
{{- $targets = append $targets (dict "namespace" $svcNs "name" $name "keys" ($pgKeys | uniq | sortAlpha)) -}}
{{- end -}}
{{- $sets = append $sets (dict "id" "postgres" "component" "postgres-credentials" "keys" $keys "targets" $targets) -}}
{{- end -}}
{{- if and $needJwt (not .Values.secrets.jwt.existingSecret) -}}
{{- $keys := dict "private-key.pem" "jwt-private-key" "certificate.pem" "jwt-certificate" -}}
{{- $target := dict "namespace" $svcNs "name" (include "nova.jwt.secretName" .) "keys" (keys $keys | sortAlpha) -}}
{{- $sets = append $sets (dict "id" "jwt" "component" "jwt" "keys" $keys "targets" (list $target) "commonName" (printf "%s-jwt" (include "nova.fullname" .)) "validityDays" (int .Values.secrets.jwt.validityDays) "keyType" .Values.secrets.jwt.keyType) -}}
{{- end -}}
{{- if and $needTurn (not .Values.secrets.turn.existingSecret) -}}
{{- $target := dict "namespace" $svcNs "name" (include "nova.turn.secretName" .) "keys" (list "turn-secret") -}}
{{- $sets = append $sets (dict "id" "turn" "component" "turn" "keys" (dict "turn-secret" "long") "targets" (list $target)) -}}
{{- end -}}
{{- $labels := include "nova.selectorLabels" (dict "ctx" . "component" "") | fromYaml -}}
{{- $_ := set $labels "app.kubernetes.io/part-of" "nova" -}}
{{- $_ := set $labels "app.kubernetes.io/managed-by" "nova-secret-generator" -}}
{{- /* Not in any manifest, so Argo CD never prunes them; with label tracking (the instance label) these keep
them from showing as extraneous or being pruned. */ -}}
{{- $annotations := dict "argocd.argoproj.io/compare-options" "IgnoreExtraneous" "argocd.argoproj.io/sync-options" "Prune=false,Delete=false" -}}
{{- $marker := dict "namespace" $svcNs "name" (include "nova.componentName" (dict "ctx" . "component" "secrets-generated")) -}}
{{- dict "marker" $marker "generateMissing" .Values.secrets.generateMissingOnUpgrade "passwordLength" (int .Values.secrets.passwordLength) "labels" $labels "annotations" $annotations "sets" $sets | toPrettyJson -}}
{{- end -}}

{{/* The namespaces the generator writes to, each with the Secret names it may read there (the marker
ConfigMap is in the services namespace), as YAML {namespace: [names]}. Usage: {{ include "nova.secrets.generatorTargets" $ | fromYaml }} */}}
{{- define "nova.secrets.generatorTargets" -}}
{{- $plan := include "nova.secrets.plan" . | fromJson -}}
{{- $byNs := dict -}}
{{- range $set := $plan.sets -}}
{{- range $t := $set.targets -}}
{{- $_ := set $byNs $t.namespace (append (get $byNs $t.namespace | default list) $t.name | uniq | sortAlpha) -}}
{{- end -}}
{{- end -}}
{{- toYaml $byNs -}}
{{- end -}}

{{/* ConfigMap data of the generator: the script (files/secret-generator.py) and its plan.
Usage: {{ include "nova.secrets.generatorData" $ }} */}}
{{- define "nova.secrets.generatorData" -}}
plan.json: |
  {{- include "nova.secrets.plan" . | nindent 2 }}
secret-generator.py: |
  {{- .Files.Get "files/secret-generator.py" | nindent 2 }}
{{- end -}}

{{/* Pod template of the generator Job (immutable, so it goes into the Job's name with the ConfigMap data).
Labels are the selector labels only, so a chart version bump alone starts no new Job.
Usage: {{ include "nova.secrets.generatorPod" $ }} */}}
{{- define "nova.secrets.generatorPod" -}}
{{- $g := .Values.secrets.generator -}}
metadata:
  labels:
    {{- include "nova.selectorLabels" (dict "ctx" . "component" "secret-generator") | nindent 4 }}
    app.kubernetes.io/part-of: nova
spec:
  restartPolicy: Never
  serviceAccountName: {{ include "nova.secrets.generatorName" . }}
  # No automounted token: the one container that talks to the API server gets a short-lived projected token
  # (volume api below); its Roles allow get (named Secrets) and create only.
  automountServiceAccountToken: false
  {{- with include "nova.imagePullSecrets" . }}
  {{- . | nindent 2 }}
  {{- end }}
  securityContext:
    {{- include "nova.podSecurityContext" (dict "ctx" . "override" dict) | nindent 4 }}
  containers:
    - name: secret-generator
      image: {{ include "nova-common.image" (dict "ctx" . "image" $g.image "key" "secrets.generator.image") }}
      imagePullPolicy: {{ $g.image.pullPolicy }}
      command: [python3, /etc/nova-secret-generator/secret-generator.py, /etc/nova-secret-generator/plan.json]
      env:
        - name: HOME
          value: /tmp
        - name: PYTHONDONTWRITEBYTECODE
          value: "1"
        - name: NOVA_API_WAIT
          value: {{ $g.apiWaitSeconds | quote }}
        - name: NOVA_K8S_TOKEN_FILE
          value: /var/run/secrets/nova-secret-generator/token
        - name: NOVA_K8S_CA_FILE
          value: /var/run/secrets/nova-secret-generator/ca.crt
      resources:
        {{- include "nova-common.resources" (dict "resources" $g.resources "key" "secrets.generator.resources") | nindent 8 }}
      securityContext:
        {{- include "nova.containerSecurityContext" (dict "ctx" . "override" dict) | nindent 8 }}
      volumeMounts:
        - name: generator
          mountPath: /etc/nova-secret-generator
          readOnly: true
        - name: tmp
          mountPath: /tmp
        - name: api
          mountPath: /var/run/secrets/nova-secret-generator
          readOnly: true
  volumes:
    - name: generator
      configMap:
        name: {{ include "nova.secrets.generatorName" . }}
    - name: tmp
      emptyDir: {sizeLimit: 16Mi}
    # The ServiceAccount token (bound to this pod, expiring) and the cluster CA from kube-root-ca.crt, which
    # Kubernetes publishes in every namespace.
    - name: api
      projected:
        sources:
          - serviceAccountToken:
              path: token
              expirationSeconds: 3600
          - configMap:
              name: kube-root-ca.crt
              items:
                - key: ca.crt
                  path: ca.crt
{{- end -}}

{{/* Name of the generator Job: <fullname>-secret-generator-<10 hex of sha256(pod template + ConfigMap data)>,
like the PostgreSQL bootstrap Job: a changed plan (a new credential, the generateMissingOnUpgrade opt-in), script
or image is a new Job, an unchanged sync keeps the finished one. Usage: {{ include "nova.secrets.generatorJobName" $ }} */}}
{{- define "nova.secrets.generatorJobName" -}}
{{- $hash := print (include "nova.secrets.generatorPod" .) (include "nova.secrets.generatorData" .) | sha256sum | trunc 10 -}}
{{- include "nova-common.name.suffixed" (dict "name" (include "nova.secrets.generatorName" .) "suffix" $hash) -}}
{{- end -}}
