{{/* The ConfigMap of the service's non-secret settings: `config` keys are settings without the prefix. */}}
{{- define "maille-lib.configmap" -}}
{{- if .Values.config }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "maille-lib.fullname" . }}
  labels:
    {{- include "maille-lib.labels" . | nindent 4 }}
data:
  {{- $prefix := include "maille-lib.prefix" . }}
  {{- range $key, $value := .Values.config }}
  {{ printf "%s%s" $prefix ($key | upper) }}: {{ $value | toString | quote }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "maille-lib.serviceaccount" -}}
{{- if .Values.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "maille-lib.serviceAccountName" . }}
  labels:
    {{- include "maille-lib.labels" . | nindent 4 }}
automountServiceAccountToken: false
{{- end }}
{{- end -}}

{{/* The pod of the service (the Deployment's, also the base of its Jobs). */}}
{{- define "maille-lib.podSpec" -}}
serviceAccountName: {{ include "maille-lib.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- include "maille-lib.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "maille-lib.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSize | default "256Mi" }}
{{- $tls := ((.Values.global | default dict).nats | default dict).tls | default dict }}
{{- if $tls.enabled }}
- name: nats-tls
  secret:
    secretName: {{ $tls.existingSecret }}
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "maille-lib.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if ((((.Values.global | default dict).nats | default dict).tls | default dict).enabled) }}
- name: nats-tls
  mountPath: /etc/maille/nats-tls
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "maille-lib.deployment" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "maille-lib.fullname" . }}
  labels:
    {{- include "maille-lib.labels" . | nindent 4 }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    {{- if eq (.Values.updateStrategy | default "RollingUpdate") "Recreate" }}
    type: Recreate
    {{- else }}
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
    {{- end }}
  selector:
    matchLabels:
      {{- include "maille-lib.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "maille-lib.labels" . | nindent 8 }}
      annotations:
        checksum/config: {{ toJson .Values.config | sha256sum | trunc 16 }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- include "maille-lib.podSpec" . | nindent 6 }}
      terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds | default 30 }}
      {{- if .Values.topologySpread.enabled }}
      topologySpreadConstraints:
        - maxSkew: {{ .Values.topologySpread.maxSkew }}
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "maille-lib.selectorLabels" . | nindent 14 }}
        - maxSkew: {{ .Values.topologySpread.maxSkew }}
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: {{ .Values.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "maille-lib.selectorLabels" . | nindent 14 }}
      {{- end }}
      containers:
        - name: {{ .Chart.Name }}
          image: {{ include "maille-lib.image" . }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          {{- with .Values.command }}
          command:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: http
              containerPort: {{ .Values.containerPort }}
              protocol: TCP
            {{- if .Values.metricsPort }}
            - name: metrics
              containerPort: {{ .Values.metricsPort }}
              protocol: TCP
            {{- end }}
          env:
            {{- include "maille-lib.env" . | nindent 12 }}
          {{- with (include "maille-lib.envFrom" .) }}
          envFrom:
            {{- . | nindent 12 }}
          {{- end }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          securityContext:
            {{- include "maille-lib.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            {{- include "maille-lib.volumeMounts" . | nindent 12 }}
      volumes:
        {{- include "maille-lib.volumes" . | nindent 8 }}
{{- end -}}

{{- define "maille-lib.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "maille-lib.fullname" . }}
  labels:
    {{- include "maille-lib.labels" . | nindent 4 }}
spec:
  type: {{ .Values.service.type }}
  selector:
    {{- include "maille-lib.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ .Values.service.port }}
      targetPort: http
      protocol: TCP
    {{- if .Values.metricsPort }}
    - name: metrics
      port: {{ .Values.metricsPort }}
      targetPort: metrics
      protocol: TCP
    {{- end }}
{{- end -}}

{{- define "maille-lib.hpa" -}}
{{- if .Values.autoscaling.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "maille-lib.fullname" . }}
  labels:
    {{- include "maille-lib.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "maille-lib.fullname" . }}
  minReplicas: {{ .Values.autoscaling.minReplicas }}
  maxReplicas: {{ .Values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .Values.autoscaling.targetCPUUtilizationPercentage }}
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      policies:
        - type: Percent
          value: 100
          periodSeconds: 30
    scaleDown:
      stabilizationWindowSeconds: 300
{{- end }}
{{- end -}}

{{- define "maille-lib.pdb" -}}
{{- if .Values.podDisruptionBudget.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "maille-lib.fullname" . }}
  labels:
    {{- include "maille-lib.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "maille-lib.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/*
Who may reach the service: the gateway is the one entry from outside (`networkPolicy.from: any`, or the
ingress controller's namespace); every other service only from the gateway's pods.
*/}}
{{- define "maille-lib.networkpolicy" -}}
{{- if .Values.networkPolicy.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "maille-lib.fullname" . }}
  labels:
    {{- include "maille-lib.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "maille-lib.selectorLabels" . | nindent 6 }}
  policyTypes: ["Ingress"]
  ingress:
    - ports:
        - port: http
          protocol: TCP
      {{- if eq .Values.networkPolicy.from "gateway" }}
      from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: gateway
              app.kubernetes.io/instance: {{ .Release.Name }}
      {{- else if eq .Values.networkPolicy.from "ingressNamespace" }}
      from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ .Values.networkPolicy.ingressNamespace | required "networkPolicy.ingressNamespace is required" }}
      {{- else if ne .Values.networkPolicy.from "any" }}
      {{- fail "networkPolicy.from is one of gateway, ingressNamespace, any" }}
      {{- end }}
    {{- if .Values.metricsPort }}
    - ports:
        - port: metrics
          protocol: TCP
      {{- with .Values.networkPolicy.metricsNamespace }}
      from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ . }}
      {{- end }}
    {{- end }}
{{- end }}
{{- end -}}

{{- define "maille-lib.servicemonitor" -}}
{{- if .Values.serviceMonitor.enabled }}
{{- if not .Values.metricsPort }}
{{- fail "serviceMonitor.enabled needs a metricsPort" }}
{{- end }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "maille-lib.fullname" . }}
  labels:
    {{- include "maille-lib.labels" . | nindent 4 }}
spec:
  selector:
    matchLabels:
      {{- include "maille-lib.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: metrics
      path: {{ .Values.serviceMonitor.path }}
      interval: {{ .Values.serviceMonitor.interval }}
{{- end }}
{{- end -}}

{{/*
A Job of the service's image: (dict "ctx" $ "name" "bootstrap" "command" (list …) "hook" "post-install,pre-upgrade").
*/}}
{{- define "maille-lib.jobSpec" -}}
{{- $ := .ctx -}}
backoffLimit: {{ .backoffLimit | default 3 }}
activeDeadlineSeconds: {{ .deadline | default 3600 }}
ttlSecondsAfterFinished: 86400
template:
  metadata:
    labels:
      {{- include "maille-lib.labels" $ | nindent 6 }}
      maille.fr/job: {{ .name }}
  spec:
    {{- include "maille-lib.podSpec" $ | nindent 4 }}
    restartPolicy: Never
    containers:
      - name: {{ .name }}
        image: {{ include "maille-lib.image" $ }}
        imagePullPolicy: {{ $.Values.image.pullPolicy }}
        command:
          {{- toYaml .command | nindent 10 }}
        env:
          {{- include "maille-lib.env" $ | nindent 10 }}
        {{- with (include "maille-lib.envFrom" $) }}
        envFrom:
          {{- . | nindent 10 }}
        {{- end }}
        resources:
          {{- toYaml $.Values.jobResources | nindent 10 }}
        securityContext:
          {{- include "maille-lib.containerSecurityContext" $ | nindent 10 }}
        volumeMounts:
          {{- include "maille-lib.volumeMounts" $ | nindent 10 }}
    volumes:
      {{- include "maille-lib.volumes" $ | nindent 6 }}
{{- end -}}

{{- define "maille-lib.job" -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "maille-lib.fullname" .ctx }}-{{ .name }}
  labels:
    {{- include "maille-lib.labels" .ctx | nindent 4 }}
  {{- with .hook }}
  annotations:
    helm.sh/hook: {{ . }}
    helm.sh/hook-weight: {{ $.weight | default "0" | quote }}
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
  {{- end }}
spec:
  {{- include "maille-lib.jobSpec" . | nindent 2 }}
{{- end -}}

{{- define "maille-lib.cronjob" -}}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ include "maille-lib.fullname" .ctx }}-{{ .name }}
  labels:
    {{- include "maille-lib.labels" .ctx | nindent 4 }}
spec:
  schedule: {{ .schedule | quote }}
  timeZone: {{ .timeZone | default "Europe/Paris" }}
  suspend: {{ .suspend | default false }}
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 3
  jobTemplate:
    spec:
      {{- include "maille-lib.jobSpec" . | nindent 6 }}
{{- end -}}

{{/* Everything a service chart renders; its own extras beside it. */}}
{{- define "maille-lib.all" -}}
{{- $parts := list "maille-lib.configmap" "maille-lib.serviceaccount" "maille-lib.deployment" "maille-lib.service" "maille-lib.hpa" "maille-lib.pdb" "maille-lib.networkpolicy" "maille-lib.servicemonitor" -}}
{{- range $parts }}
{{- $out := include . $ | trim }}
{{- if $out }}
---
{{ $out }}
{{- end }}
{{- end }}
{{- if .Values.usesDocstore }}
---
{{ include "maille-lib.job" (dict "ctx" . "name" "bootstrap" "command" (list "python" "-m" "maille_kit.bootstrap" .Chart.Name) "hook" "post-install,pre-upgrade" "weight" "-5" "deadline" 600) }}
{{- end }}
{{- end -}}
