#!/usr/bin/env bash
# The lint step of the kme2e GitHub Action (action.yml): findings as workflow annotations and as
# SARIF for code scanning, the exit code kept for the step that fails the job after the upload.
# Inputs come as environment variables (never interpolated into the script):
#   KME2E         the kme2e binary
#   KME2E_PATHS   files or directories to lint, separated by whitespace or newlines
#   KME2E_MESH    istio, istio-ambient, linkerd or none (optional)
#   KME2E_VALUES  Helm values, one CHART=FILE per line (optional)
#   KME2E_ARGS    further lint flags, separated by whitespace (optional)
#   KME2E_SARIF   where the SARIF file goes
#   GITHUB_OUTPUT where `exit-code` is written (the runner's step outputs)
set -uo pipefail

args=(lint)
read -r -a paths <<<"$(tr '\n' ' ' <<<"${KME2E_PATHS:-.}")"
args+=("${paths[@]}")
if [ -n "${KME2E_MESH:-}" ]; then
  args+=(--mesh "$KME2E_MESH")
fi
while IFS= read -r line; do
  line="${line#"${line%%[![:space:]]*}"}"
  line="${line%"${line##*[![:space:]]}"}"
  [ -n "$line" ] && args+=(--values "$line")
done <<<"${KME2E_VALUES:-}"
if [ -n "${KME2E_ARGS:-}" ]; then
  read -r -a extra <<<"$KME2E_ARGS"
  args+=("${extra[@]}")
fi

# Annotations on the pull request's lines, and the summary on the log.
"$KME2E" "${args[@]}" --format github
code=$?
# The same findings for code scanning (a second read of the inputs: lint is fast).
"$KME2E" "${args[@]}" --format sarif >"${KME2E_SARIF:?}" 2>/dev/null
echo "exit-code=$code" >>"${GITHUB_OUTPUT:?}"
exit 0
