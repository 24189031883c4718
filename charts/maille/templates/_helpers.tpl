{{- define "maille.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/part-of: maille
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end -}}

{{- define "maille.selector" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end -}}

{{/* An image reference must name a version. */}}
{{- define "maille.image" -}}
{{- if or (hasSuffix ":latest" .) (not (contains ":" .)) -}}
{{- fail (printf "image %q must name a version, not latest" .) -}}
{{- end -}}
{{- . -}}
{{- end -}}

{{/* Only Maille's own pods (and, where given, more peers) may reach an infrastructure part. */}}
{{- define "maille.onlyMaille" -}}
- podSelector:
    matchLabels:
      app.kubernetes.io/part-of: maille
{{- end -}}

{{- define "maille.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "maille.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
