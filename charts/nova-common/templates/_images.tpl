{{/*
Images: references and pull secrets.
*/}}

{{/* Image reference from an image block {registry, repository, tag, digest}: global.imageRegistry wins over the
block's registry, a digest wins over the tag, an empty tag falls back to .defaultTag (if given); with neither
tag nor digest the render fails naming the key.
Usage: {{ include "nova-common.image" (dict "ctx" $ "image" .Values.image "key" "image" "defaultTag" $.Chart.AppVersion) }} */}}
{{- define "nova-common.image" -}}
{{- $img := .image -}}
{{- $key := required "nova-common.image: pass \"key\" (the values path of the image block)" .key -}}
{{- if not (kindIs "map" $img) -}}
{{- fail (printf "%s must be a map {registry, repository, tag, digest}" $key) -}}
{{- end -}}
{{- if not $img.repository -}}
{{- fail (printf "%s.repository is empty: set it to the image repository (e.g. library/redis)" $key) -}}
{{- end -}}
{{- $registry := toString ((.ctx.Values.global).imageRegistry | default $img.registry | default "") -}}
{{- $name := ternary (printf "%s/%s" $registry $img.repository) (toString $img.repository) (ne $registry "") -}}
{{- $tag := toString (default "" $img.tag) | default (toString (default "" .defaultTag)) -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $name $img.digest -}}
{{- else if $tag -}}
{{- printf "%s:%s" $name $tag -}}
{{- else -}}
{{- fail (printf "%s.tag and %s.digest are both empty: pin one of them" $key $key) -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets of a pod: global.imagePullSecrets, then the chart's own imagePullSecrets (names or
{name: ...} maps), duplicates dropped; nothing when there are none.
Usage: {{- with include "nova-common.imagePullSecrets" $ }}{{ . | nindent 6 }}{{ end }} */}}
{{- define "nova-common.imagePullSecrets" -}}
{{- $names := list -}}
{{- range concat ((.Values.global).imagePullSecrets | default list) (.Values.imagePullSecrets | default list) -}}
{{- if kindIs "map" . }}{{ $names = append $names .name }}{{ else }}{{ $names = append $names . }}{{ end -}}
{{- end -}}
{{- with ($names | uniq) -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}
