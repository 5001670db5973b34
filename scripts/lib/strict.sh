# Sourced first by every bash script under scripts/ (and .ci/run): strict mode that never exits in
# silence. Under `set -e` a failing command ends the script; the ERR trap (inherited by functions,
# `-E`) first prints which step failed, where, with what status, and where its log is (a script
# sets STEP_LOG when it knows which log the step under way writes).
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib/strict.sh"      # from scripts/
#   STEP_LOG=/var/lib/…/x.log                              # optional
set -eEuo pipefail
STEP_LOG=${STEP_LOG:-}
# on_step_failure STATUS LINE FILE COMMAND — the report. Inside a subshell or a command
# substitution it stays quiet: a failure there is not fatal by itself, and when it is, the
# shell above fails on the line that ran it and reports that.
on_step_failure() {
  [ "$BASH_SUBSHELL" = 0 ] || return 0
  printf '%s: step failed (exit %s) at %s:%s: %s\n' "${0##*/}" "$1" "${3#"$PWD/"}" "$2" "$4" >&2
  [ -z "$STEP_LOG" ] || printf '%s: see %s\n' "${0##*/}" "$STEP_LOG" >&2
}
trap 'on_step_failure "$?" "$LINENO" "${BASH_SOURCE[0]:-$0}" "$BASH_COMMAND"' ERR
