{{/* Chart name, overridable with nameOverride. */}}
{{- define "horolog.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of every object the release creates: the release name when it already contains the
chart name (`helm install horolog ...` gives "horolog", not "horolog-horolog").
*/}}
{{- define "horolog.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "horolog.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "horolog.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: horolog
{{- end }}

{{/* Labels that select the operator's pods; never change them (Deployment selectors are immutable). */}}
{{- define "horolog.selectorLabels" -}}
app.kubernetes.io/name: {{ include "horolog.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "horolog.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "horolog.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image: repository@digest when image.digest is set, else repository:tag. */}}
{{- define "horolog.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The job label of the operator's series in Prometheus (a ServiceMonitor makes it the Service's name). */}}
{{- define "horolog.metricsJob" -}}
{{- .Values.metrics.prometheusRule.job | default (printf "%s-metrics" (include "horolog.fullname" .)) }}
{{- end }}

{{/* The Lease leader election uses, in the release namespace: one per release. */}}
{{- define "horolog.leaseName" -}}
{{- include "horolog.fullname" . }}
{{- end }}

{{/*
The namespace-scoped rules of the operator, shared by the ClusterRole (all namespaces) and
the Roles (watchNamespaces). Least privilege: every verb below is used by a reconciler, no
wildcards, and no access to Secrets or ConfigMaps (pods reference them; the kubelet, not
the operator, reads them).
*/}}
{{- define "horolog.rules" -}}
# Schedules, JobRuns, Tasks, Backfills and Calendars: the controllers watch all five (reflector caches:
# list + watch; get for reads outside the cache).
- apiGroups: ["horolog.dev"]
  resources: ["schedules", "jobruns", "tasks", "backfills", "calendars"]
  verbs: ["get", "list", "watch"]
# JobRuns: created for each fire time (and run-now, and Backfills), deleted by history
# limits, resultTTL and concurrencyPolicy Replace.
- apiGroups: ["horolog.dev"]
  resources: ["jobruns"]
  verbs: ["create", "delete"]
# Schedules: deleted ttlSecondsAfterFinished after they finished (maxRuns reached, trigger
# exhausted). The operator never creates or edits them.
- apiGroups: ["horolog.dev"]
  resources: ["schedules"]
  verbs: ["delete"]
# Status is written only through the status subresource: server-side apply / merge patch
# (patch) and replace (update). The operator never writes spec.
- apiGroups: ["horolog.dev"]
  resources: ["schedules/status", "jobruns/status", "tasks/status", "backfills/status", "calendars/status"]
  verbs: ["patch", "update"]
# Pods: one per JobRun attempt (create); watched to follow the attempt (get, list, watch);
# deleted on cancel, Replace, activeDeadlineSeconds and with their JobRun's history; patched
# to remove the horolog.dev/run-tracking finalizer once the attempt's outcome is recorded.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete", "patch"]
# Events users read with kubectl describe (Fired, Missed, PodCreated, ...): each one is
# created once and never changed (horolog's EventPublisher writes events.k8s.io/v1). The
# core group is for clusters that mirror events to it.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/* Added to the operator's rules only with jobExecutor.enabled. */}}
{{- define "horolog.jobExecutorRules" -}}
# Jobs (jobExecutor.enabled): runs with `executor: Job` run each attempt as a batch/v1 Job
# owned by the JobRun (create), followed through its status (get, list, watch), deleted
# on cancel, Replace and with their JobRun, and patched to remove the horolog.dev/run-tracking
# finalizer once the run's outcome is recorded.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "watch", "delete", "patch"]
{{- end }}

{{/* Every rule the operator's ClusterRole (or each watchNamespaces Role) holds. */}}
{{- define "horolog.operatorRules" -}}
{{ include "horolog.rules" . }}
{{- if .Values.jobExecutor.enabled }}
{{ include "horolog.jobExecutorRules" . }}
{{- end }}
{{- end }}

{{/*
What namespace users get through the built-in view role: read access to every horolog kind,
never their status subresources (status is the operator's).
*/}}
{{- define "horolog.viewRules" -}}
- apiGroups: ["horolog.dev"]
  resources: ["schedules", "jobruns", "tasks", "backfills", "calendars"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/* What the built-in edit and admin roles get: view plus writes, again never status. */}}
{{- define "horolog.editRules" -}}
- apiGroups: ["horolog.dev"]
  resources: ["schedules", "jobruns", "tasks", "backfills", "calendars"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
{{- end }}
