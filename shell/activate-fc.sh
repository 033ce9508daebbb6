# fc: builtin-off (appended to .venv/bin/activate by `make install`; keep this first line)
# `fc` is also a bash/zsh builtin ("fix command": it edits and re-runs history), and a builtin
# wins over any program on PATH. While this venv is active the builtin is off, so `fc` runs the
# program; `deactivate` turns it back on. Other shells are left alone: use `candlecast` there.
if [ -n "${BASH_VERSION:-}${ZSH_VERSION:-}" ]; then
    if [ -n "${BASH_VERSION:-}" ]; then enable -n fc; else disable fc; fi
    # keep the venv's own deactivate under another name and wrap it
    eval "_fc_venv_$(typeset -f deactivate)"
    deactivate () {
        _fc_venv_deactivate "$@"
        enable fc
        if [ "${1:-}" != "nondestructive" ]; then unset -f _fc_venv_deactivate; fi
    }
fi
