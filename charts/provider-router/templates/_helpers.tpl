{{/*
Names and labels shared by every template.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "provider-router.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name used for namespaced objects: fullnameOverride, else <release>-<name>, else just
<release> when it already contains the name. Truncated to 63 characters (DNS label).
*/}}
{{- define "provider-router.fullname" -}}
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

{{/*
Name of cluster-scoped objects (ClusterRole, ClusterRoleBinding): the release namespace is part
of it, so that two releases of the same name in different namespaces do not collide.
*/}}
{{- define "provider-router.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "provider-router.fullname" .) }}
{{- end }}

{{/* chart label value: <name>-<version>. */}}
{{- define "provider-router.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator pods; never change them (Deployment selectors are immutable). */}}
{{- define "provider-router.selectorLabels" -}}
app.kubernetes.io/name: {{ include "provider-router.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Standard labels on every object the chart renders. */}}
{{- define "provider-router.labels" -}}
helm.sh/chart: {{ include "provider-router.chart" . }}
{{ include "provider-router.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: zoey-provider-router
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "provider-router.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "provider-router.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is given. */}}
{{- define "provider-router.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Whether leader election is on: more than one replica. */}}
{{- define "provider-router.leaderElection" -}}
{{- if gt (int .Values.replicas) 1 }}true{{- end }}
{{- end }}

{{/*
The Lease the replicas elect a leader with: one per release, passed to the operator as
--leader-lease, so two releases in one namespace never share (and starve on) one Lease.
*/}}
{{- define "provider-router.leaseName" -}}
{{ include "provider-router.fullname" . }}-leader
{{- end }}

{{/*
Whether replicas share state through a store (sharedState.url or existingSecret). A URL in
values must carry no credentials: the schema refuses it, and so does this, for a schema skipped
with --skip-schema-validation.
*/}}
{{- define "provider-router.sharedState" -}}
{{- $shared := .Values.sharedState }}
{{- if and $shared.url $shared.existingSecret }}
{{- fail "sharedState: set url or existingSecret, not both" }}
{{- end }}
{{- if contains "@" $shared.url }}
{{- fail "sharedState.url must not hold a user or password: put the URL in a Secret and set sharedState.existingSecret" }}
{{- end }}
{{- if or $shared.url $shared.existingSecret }}true{{- end }}
{{- end }}

{{/* The watched namespaces, de-duplicated, in the order given. */}}
{{- define "provider-router.watchNamespaces" -}}
{{- .Values.watchNamespaces | uniq | toJson }}
{{- end }}
