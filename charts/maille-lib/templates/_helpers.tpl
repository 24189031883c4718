{{/*
Names and labels. A service chart's pods are named <release>-<chart> (the umbrella's release "maille"
gives maille-gateway, maille-identity…); every Maille pod carries app.kubernetes.io/part-of: maille,
which the network policies of NATS, MongoDB and Keycloak let in.
*/}}
{{- define "maille-lib.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "maille-lib.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "maille-lib.selectorLabels" -}}
app.kubernetes.io/name: {{ include "maille-lib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "maille-lib.labels" -}}
{{ include "maille-lib.selectorLabels" . }}
app.kubernetes.io/part-of: maille
app.kubernetes.io/version: {{ include "maille-lib.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The image tag: the value, else the chart's appVersion; never "latest", never empty. */}}
{{- define "maille-lib.tag" -}}
{{- $tag := .Values.image.tag | default ((.Values.global).imageTag) | default .Chart.AppVersion | toString -}}
{{- if or (eq $tag "") (eq $tag "latest") -}}
{{- fail (printf "%s: image.tag must name a version (not %q)" .Chart.Name $tag) -}}
{{- end -}}
{{- $tag -}}
{{- end -}}

{{- define "maille-lib.image" -}}
{{- $registry := .Values.image.registry | default ((.Values.global).imageRegistry) | default "ghcr.io/maille" -}}
{{- if .Values.image.digest -}}
{{- if not (regexMatch "^sha256:[0-9a-f]{64}$" .Values.image.digest) -}}
{{- fail (printf "image.digest %q is not a sha256 digest (sha256:<64 hex>)" .Values.image.digest) -}}
{{- end -}}
{{- printf "%s/%s:%s@%s" $registry .Values.image.repository (include "maille-lib.tag" .) .Values.image.digest -}}
{{- else -}}
{{- printf "%s/%s:%s" $registry .Values.image.repository (include "maille-lib.tag" .) -}}
{{- end -}}
{{- end -}}

{{- define "maille-lib.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "maille-lib.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The environment prefix of the service's settings: MAILLE_<SERVICE>_. */}}
{{- define "maille-lib.prefix" -}}
{{- printf "MAILLE_%s_" (.Values.settingsPrefix | default .Chart.Name | upper) -}}
{{- end -}}

{{- define "maille-lib.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "maille-lib.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
The service's environment: what every service needs (NATS, the docstore from an existing Secret, the
token issuer), then its ConfigMap (`config`), then each `secretEnv` entry from an existing Secret. No
value of a secret is ever written by a chart.
*/}}
{{- define "maille-lib.env" -}}
{{- $prefix := include "maille-lib.prefix" . -}}
{{- $global := .Values.global | default dict -}}
- name: {{ $prefix }}HTTP_HOST
  value: "0.0.0.0"
- name: {{ $prefix }}HTTP_PORT
  value: {{ .Values.containerPort | quote }}
- name: {{ $prefix }}METRICS_PORT
  value: {{ .Values.metricsPort | quote }}
- name: {{ $prefix }}ENVIRONMENT
  value: {{ .Values.environment | default $global.environment | default "production" | quote }}
- name: {{ $prefix }}NATS_URL
  value: {{ .Values.nats.url | default ($global.nats).url | required "nats.url (or global.nats.url) is required" | quote }}
{{- with (.Values.nats.existingSecret | default ($global.nats).existingSecret) }}
- name: {{ $prefix }}NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Chart.Name }}
{{- end }}
- name: {{ $prefix }}STREAM_REPLICAS
  value: {{ .Values.nats.streamReplicas | default ($global.nats).streamReplicas | default 1 | quote }}
{{- if (($global.nats).tls).enabled }}
- name: {{ $prefix }}NATS_TLS_CA_FILE
  value: /etc/maille/nats-tls/ca.crt
{{- end }}
{{- if .Values.usesDocstore }}
{{- $mongo := .Values.mongodb.existingSecret | default ($global.mongodb).existingSecret }}
- name: {{ $prefix }}MONGODB_URL
  valueFrom:
    secretKeyRef:
      name: {{ $mongo | required "mongodb.existingSecret (or global.mongodb.existingSecret) is required" }}
      key: {{ .Values.mongodb.secretKey | default ($global.mongodb).secretKey | default "url" }}
{{- end }}
{{- with .Values.forwardedAllowIps }}
- name: FORWARDED_ALLOW_IPS
  value: {{ . | quote }}
{{- end }}
- name: {{ $prefix }}AUTH_ISSUER
  value: {{ include "maille-lib.issuer" . | quote }}
{{- with (.Values.auth.jwksUrl | default ($global.auth).jwksUrl) }}
- name: {{ $prefix }}AUTH_JWKS_URL
  value: {{ . | quote }}
{{- end }}
{{- /* The usage key: for the deployables that tell uses (`tellsUses`), never the observatory. */}}
{{- with (and (ne .Values.tellsUses false) ($global.usage).existingSecret) }}
- name: {{ $prefix }}USAGE_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: usage-key
{{- end }}
{{- with (.Values.otlpEndpoint | default $global.otlpEndpoint) }}
- name: {{ $prefix }}OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- range $name, $ref := .Values.secretEnv }}
- name: {{ $prefix }}{{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.secretName | required (printf "secretEnv.%s.secretName is required" $name) }}
      key: {{ $ref.key | required (printf "secretEnv.%s.key is required" $name) }}
{{- end }}
{{- end -}}

{{- define "maille-lib.envFrom" -}}
{{- if .Values.config }}
- configMapRef:
    name: {{ include "maille-lib.fullname" . }}
{{- end }}
{{- end -}}

{{/* The token issuer: auth.issuer, else global.auth.issuer, else the realm at https://auth.<global.domain>. */}}
{{- define "maille-lib.issuer" -}}
{{- $global := .Values.global | default dict -}}
{{- $fromDomain := ternary (printf "https://auth.%s/realms/maille" $global.domain) "" (not (empty $global.domain)) -}}
{{- .Values.auth.issuer | default ($global.auth).issuer | default $fromDomain | required "auth.issuer (or global.auth.issuer, or global.domain) is required" -}}
{{- end -}}

{{/* The ENT's public address: https://<global.domain> (empty without a domain). */}}
{{- define "maille-lib.publicUrl" -}}
{{- with (.Values.global).domain -}}https://{{ . }}{{- end -}}
{{- end -}}
