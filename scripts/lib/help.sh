# Sourced by every script in scripts/ right after its `set` line, with no arguments, so that it
# sees the script's own: `--help` or `-h` among them (before a `--` that ends the script's own
# options) prints the script's header comment, which is its usage, and exits 0.
for _help_arg in "$@"; do
  [[ $_help_arg == -- ]] && break
  if [[ $_help_arg == --help || $_help_arg == -h ]]; then
    # The comment lines after the #! line, up to the first line that is not a comment.
    sed -n '2,/^[^#]/{/^#/!d;s/^# \{0,1\}//;p}' "$0"
    exit 0
  fi
done
unset _help_arg
