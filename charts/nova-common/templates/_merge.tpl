{{/*
Data helpers: deep merge, nearest name.
*/}}

{{/* Deep merge: copies .src into .dst (mutating .dst); maps merge key by key, everything else (lists, scalars,
false, 0, "") replaces. Unlike sprig's mergeOverwrite, an override's `false` wins over a default `true`.
Usage: {{- include "nova-common.deepMerge" (dict "dst" $copy "src" $override) -}} */}}
{{- define "nova-common.deepMerge" -}}
{{- $dst := .dst -}}
{{- range $key, $value := .src -}}
{{- $current := get $dst $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $current) -}}
{{- include "nova-common.deepMerge" (dict "dst" $current "src" $value) -}}
{{- else if or (kindIs "map" $value) (kindIs "slice" $value) -}}
{{- $_ := set $dst $key (deepCopy $value) -}}
{{- else -}}
{{- $_ := set $dst $key $value -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The candidate nearest to .name (Levenshtein distance), for "did you mean ...?" messages.
Usage: {{ include "nova-common.nearest" (dict "name" "usr-service" "candidates" (list "user-service" "auth-service")) }} */}}
{{- define "nova-common.nearest" -}}
{{- $best := "" -}}
{{- $bestDistance := 1000 -}}
{{- $a := splitList "" (toString .name) -}}
{{- range $candidate := .candidates -}}
{{- $b := splitList "" (toString $candidate) -}}
{{- $prev := list -}}
{{- range $j := until (int (add1 (len $b))) }}{{ $prev = append $prev $j }}{{ end -}}
{{- range $i, $ca := $a -}}
{{- $row := list (add1 $i) -}}
{{- range $j, $cb := $b -}}
{{- $cost := ternary 0 1 (eq $ca $cb) -}}
{{- $row = append $row (min (add1 (index $prev (add1 $j))) (add1 (last $row)) (add (index $prev $j) $cost)) -}}
{{- end -}}
{{- $prev = $row -}}
{{- end -}}
{{- if lt (int (last $prev)) $bestDistance -}}
{{- $bestDistance = int (last $prev) -}}
{{- $best = $candidate -}}
{{- end -}}
{{- end -}}
{{- $best -}}
{{- end -}}
