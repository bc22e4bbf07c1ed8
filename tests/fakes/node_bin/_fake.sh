# Sourced by every fake node command: record the call, fail when the test asked for it.
# LABYRINTH_ROOT is the node's sandbox; FAKE_SHARED is the fake cluster's state, common to all nodes.
R="${LABYRINTH_ROOT:?fake commands run only inside a test sandbox}"
S="${FAKE_SHARED:?fake commands need FAKE_SHARED}"
FAKE_NAME="${0##*/}"
mkdir -p "$R/fake"
printf '%s %s %s\n' "$(date +%s.%N)" "$FAKE_NAME" "$*" >>"$R/fake/calls.log"

# fake_should_fail ARGS: true (once) when a line of $R/fake/fail is a prefix of "NAME ARGS"
fake_should_fail() {
	local call="$FAKE_NAME $*" line
	[ -f "$R/fake/fail" ] || return 1
	while IFS= read -r line; do
		if [ -n "$line" ] && [[ "$call" == "$line"* ]]; then
			grep -vxF -- "$line" "$R/fake/fail" >"$R/fake/fail.tmp" || true
			mv "$R/fake/fail.tmp" "$R/fake/fail"
			return 0
		fi
	done <"$R/fake/fail"
	return 1
}
